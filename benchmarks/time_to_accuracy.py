"""Time to accuracy: `nncompare compare mnist1d --models mlp,cnn,gru` against the MNIST-1D reference recipe.

With its defaults (early stopping, 3 seeds, parallel workers, the report written at the end, as the
command does), measured in the same run as the recipe.

    python benchmarks/time_to_accuracy.py [--models mlp,cnn,gru] [--steps 6000] [--seeds 3,1]
    python benchmarks/time_to_accuracy.py --smoke   # seconds: 20 recipe steps, 1 seed of 1 epoch, no report

The recipe (Greydanus 2020, github.com/greydanus/mnist1d: 6000 Adam steps, learning rate 1e-2, batch
100, no early stopping, the test accuracy after the last step) is written out here as a plain loop,
one model after another, seed 0, with torch's default threads (every core). It trains twice:

- on MNIST-1D's reference models, written here from their description in that repository (MLP: 40
  -> 100 -> 100 -> 10 with ReLUs and a residual second layer; CNN: three 1-D convolutions of 25
  channels, kernel 5 then 3, stride 2, into a linear layer on the 125 flattened features; GRU: torch's
  GRU, 6 units each way, bidirectional, a linear layer on all 40 x 12 outputs), on the 4000 training
  series (nncompare's training and validation splits together). This is the recipe issue 7 measured
  on this kind of machine at MLP 4.4 s, CNN 11.0 s, GRU 81.5 s for 66.3% / 93.3% / 91.2%, here timed
  again in the same run, so the machine's speed on the day is the same for both sides;
- on nncompare's own models (its training split), for the same rule on the same networks.

Target: every model of the comparison at least as accurate (mean of its seeds) as the reference
recipe's, in less total wall time than the recipe's three runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

import nncompare
from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.models import create_model
from nncompare.train import TrainConfig
from nncompare.utils import available_cores, set_seed

ISSUE_ANCHORS = {"mlp": (4.4, 66.3), "cnn": (11.0, 93.3), "gru": (81.5, 91.2)}  # seconds, test accuracy %
HEADER = f"{'model':6} {'reference recipe':>17} {'recipe, own model':>18} {'issue anchor':>14} {'nncompare acc % (mean ± std)':>29} {'run s (mean)':>13} {'epochs':>7}"


class RefMLP(nn.Module):
    """MNIST-1D's reference MLP: 40 -> 100 -> 100 (residual) -> 10."""

    def __init__(self, width: int = 100):
        super().__init__()
        self.inp, self.mid, self.out = nn.Linear(40, width), nn.Linear(width, width), nn.Linear(width, 10)

    def forward(self, x):
        h = torch.relu(self.inp(x.flatten(1)))
        return self.out(h + torch.relu(self.mid(h)))


class RefCNN(nn.Module):
    """MNIST-1D's reference CNN: 25-channel convolutions (kernel 5, 3, 3; stride 2; padding 1), linear on 25 x 5."""

    def __init__(self, channels: int = 25):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(1, channels, 5, 2, 1), nn.Conv1d(channels, channels, 3, 2, 1), nn.Conv1d(channels, channels, 3, 2, 1)])
        self.out = nn.Linear(channels * 5, 10)

    def forward(self, x):
        h = x.reshape(len(x), 1, -1)
        for conv in self.convs:
            h = torch.relu(conv(h))
        return self.out(h.flatten(1))


class RefGRU(nn.Module):
    """MNIST-1D's reference GRU: torch's GRU, 6 units, bidirectional, linear on all 40 x 12 outputs."""

    def __init__(self, hidden: int = 6):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden * 40, 10)

    def forward(self, x):
        return self.out(self.gru(x.reshape(len(x), -1, 1))[0].flatten(1))


REFERENCE_MODELS = {"mlp": RefMLP, "cnn": RefCNN, "gru": RefGRU}


def recipe(model_name: str, data, steps: int, reference: bool, lr: float = 1e-2, batch: int = 100, seed: int = 0) -> tuple[float, float]:
    """(seconds, test accuracy %) of the reference recipe on MNIST-1D's reference model `model_name`
    (on train + validation, as that repository's 4000 training series) or on nncompare's (on train)."""
    set_seed(seed)
    if reference:
        model = REFERENCE_MODELS[model_name]()
        x, y = torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y])
    else:
        model = create_model(model_name, data.meta)
        x, y = data.train.x, data.train.y
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(y)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    step = 0
    while step < steps:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n - batch + 1, batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        acc = (model(data.test.x).argmax(1) == data.test.y).float().mean().item()
    return seconds, 100 * acc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mlp,cnn,gru")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--seeds", default="3,1", help="seeds per model of each nncompare comparison timed (its default is 3; 1 matches the recipe's one run per model)")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: 20 recipe steps with 1 torch thread, one comparison of 1 seed of 1 epoch in this process, no report; nothing judged")
    args = p.parse_args()
    config, workers = None, None  # the command's defaults: its rules, a worker per core
    if args.smoke:
        args.steps, args.seeds, config, workers = 20, "1", TrainConfig(max_epochs=1), 1
        torch.set_num_threads(1)  # a few steps on a shared machine: every core's threads would mostly wait on each other
    models = args.models.split(",")
    data = load_dataset("mnist1d")  # generated and cached before either side is timed

    threads = torch.get_num_threads()
    ref, rec = {}, {}
    for m in models:
        if m in REFERENCE_MODELS:
            ref[m] = recipe(m, data, args.steps, reference=True)
            print(f"recipe, reference {m}: {ref[m][0]:.1f} s, {ref[m][1]:.1f}%", flush=True)
    for m in models:
        rec[m] = recipe(m, data, args.steps, reference=False)
        print(f"recipe, nncompare's {m}: {rec[m][0]:.1f} s, {rec[m][1]:.1f}%", flush=True)
    torch.set_num_threads(threads)
    ref_total = sum(s for s, _ in ref.values())
    recipe_total = sum(s for s, _ in rec.values())
    anchor_total = sum(ISSUE_ANCHORS[m][0] for m in models if m in ISSUE_ANCHORS)
    print(f"\nMNIST-1D, {available_cores()} cores. Recipe: {args.steps} Adam steps, lr 1e-2, batch 100, seed 0, {threads} torch threads, one model after another: "
          f"{ref_total:.1f} s on the reference models (issue's figures: {anchor_total:.1f} s), {recipe_total:.1f} s on nncompare's")
    ok = True
    for seeds in map(int, args.seeds.split(",")):
        start = time.perf_counter()
        result = nncompare.compare("mnist1d", models=models, seeds=seeds, config=config, workers=workers, store=tempfile.mkdtemp(prefix="nncompare-tta-"), report=not args.smoke)
        wall = time.perf_counter() - start
        print(f"\n`nncompare compare mnist1d --models {args.models} --seeds {seeds}` (early stopping, {result.config['workers']} worker(s), every run stored, {'no report' if args.smoke else 'the report written'}): {wall:.1f} s")
        print(HEADER)
        all_met = True
        for r in result.rows:
            m = r["model"]
            mean = 100 * r["score_mean"]
            met = m not in ref or mean >= ref[m][1]
            all_met &= met
            fmt = lambda t: f"{t[0]:.1f} s / {t[1]:.1f}%" if t else "-"  # noqa: E731
            print(
                f"{m:6} {fmt(ref.get(m)):>17} {fmt(rec[m]):>18} {fmt(ISSUE_ANCHORS.get(m)):>14} "
                f"{mean:>22.1f} ± {100 * r['score_std']:<4.1f} {r['train_seconds']:>13.1f} {r['epochs']:>7.0f}  {'>=' if met else '<'} reference recipe"
            )
        line = f"time to accuracy, {seeds} seed(s) per model: "
        if ref:
            line += f"{ref_total / wall:.2f}x faster than the reference recipe in this run ({ref_total:.1f} s), "
        line += f"{recipe_total / wall:.2f}x faster than the recipe on nncompare's models ({recipe_total:.1f} s)"
        if all(m in ISSUE_ANCHORS for m in models):
            line += f", {anchor_total / wall:.2f}x against the issue's figures ({anchor_total:.1f} s, another day)"
        print(line + f"; accuracy at least the reference recipe's for {'every model' if all_met else 'NOT every model'}")
        ok &= all_met and (ref_total if ref else recipe_total) > wall
    if args.smoke:
        print("smoke run (20 steps, 1 epoch): nothing above is judged")
        return 0
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(run_main(main))

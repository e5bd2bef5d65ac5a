"""Time to accuracy: `nncompare compare mnist1d --models mlp,cnn,gru` against the MNIST-1D reference recipe.

With its defaults (early stopping, 3 seeds, parallel workers, the report written at the end, as the
command does), measured in the same run as the recipe.

    python benchmarks/time_to_accuracy.py [--models mlp,cnn,gru] [--steps 6000]

The recipe (Greydanus 2020, github.com/greydanus/mnist1d: 6000 Adam steps, learning rate 1e-2, batch
100, no early stopping, the test accuracy after the last step) is written out here as a plain loop
and trains the same nncompare models, one after another, seed 0, with torch's default threads (every
core). Issue 7 measured it on this kind of machine at MLP 4.4 s, CNN 11.0 s, GRU 81.5 s for
66.3% / 93.3% / 91.2%. Target: every model of the comparison at least as accurate as the recipe's
(mean of its seeds), in less total wall time than the recipe's three runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import nncompare
from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.models import create_model
from nncompare.utils import available_cores, set_seed

ISSUE_ANCHORS = {"mlp": (4.4, 66.3), "cnn": (11.0, 93.3), "gru": (81.5, 91.2)}  # seconds, test accuracy %


def recipe(model_name: str, data, steps: int, lr: float = 1e-2, batch: int = 100, seed: int = 0) -> tuple[float, float]:
    """(seconds, test accuracy %) of the reference recipe on nncompare's model `model_name`."""
    set_seed(seed)
    model = create_model(model_name, data.meta)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y, n = data.train.x, data.train.y, len(data.train.y)
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
    args = p.parse_args()
    models = args.models.split(",")
    data = load_dataset("mnist1d")  # generated and cached before either side is timed

    threads = torch.get_num_threads()
    rec = {}
    for m in models:
        rec[m] = recipe(m, data, args.steps)
        print(f"recipe {m}: {rec[m][0]:.1f} s, {rec[m][1]:.1f}%", flush=True)
    torch.set_num_threads(threads)
    recipe_total = sum(s for s, _ in rec.values())
    anchor_total = sum(ISSUE_ANCHORS[m][0] for m in models if m in ISSUE_ANCHORS)
    print(f"\nMNIST-1D, {available_cores()} cores. Recipe: {args.steps} Adam steps, lr 1e-2, batch 100, seed 0, {threads} torch threads, one model after another: {recipe_total:.1f} s in all")
    ok = True
    for seeds in map(int, args.seeds.split(",")):
        start = time.perf_counter()
        result = nncompare.compare("mnist1d", models=models, seeds=seeds, store=tempfile.mkdtemp(prefix="nncompare-tta-"), report=True)
        wall = time.perf_counter() - start
        print(f"\n`nncompare compare mnist1d --models {args.models} --seeds {seeds}` (early stopping, {result.config['workers']} worker(s), every run stored, the report written): {wall:.1f} s")
        print(f"{'model':6} {'recipe s':>9} {'recipe acc %':>13} {'issue anchor':>14} {'nncompare acc % (mean ± std)':>29} {'run s (mean)':>13} {'epochs':>7}")
        all_met = True
        for r in result.rows:
            s, acc = rec[r["model"]]
            anchor = ISSUE_ANCHORS.get(r["model"])
            mean = 100 * r["score_mean"]
            met = mean >= acc and (anchor is None or mean >= anchor[1])
            all_met &= met
            print(
                f"{r['model']:6} {s:9.1f} {acc:13.1f} {(f'{anchor[0]} s / {anchor[1]}%' if anchor else '-'):>14} "
                f"{mean:>22.1f} ± {100 * r['score_std']:<4.1f} {r['train_seconds']:>13.1f} {r['epochs']:>7.0f}  {'>=' if met else '<'} recipe"
            )
        ratio = recipe_total / wall
        line = f"time to accuracy, {seeds} seed(s) per model: {ratio:.2f}x faster than the recipe on the same models ({recipe_total:.1f} s)"
        if all(m in ISSUE_ANCHORS for m in models):
            line += f", {anchor_total / wall:.2f}x faster than the issue's recipe figures ({anchor_total:.1f} s)"
        print(line + f"; accuracy at least the recipe's for {'every model' if all_met else 'NOT every model'}")
        ok &= all_met and ratio > 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_main(main))

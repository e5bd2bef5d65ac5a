"""When has a run under the small-set protocol fitted its training data? Each family's default model,
trained as the default comparison trained it before the fitted stop (no validation split, 1000
optimizer steps at least, `fitted_loss=0`: column "end"), is also tested at the first epoch whose
mean training loss falls below each of LOSSES, and after half its steps, with the weights a run
stopped there would keep (the lowest training loss so far, batch-norm statistics recomputed).
Nothing but the stop differs: the protocol's learning rate follows the training loss already seen,
so a run stopped at epoch e is this run's first e epochs.

    python benchmarks/fitted.py [--sets A,PATH_TRAIN.txt] [--models mlp,cnn] [--seeds 3] [--workers 2]
    python benchmarks/fitted.py --smoke   # seconds: ItalyPowerDemand, the MLP, 1 seed

Prints, per family and set, the mean test accuracy % over the seeds and the share of the run's
training time each stop would take. Since 2026-12-07 a run stops at "<0.0001" by default
(TrainConfig.fitted_loss, train/epochs.py NoValidation.done). Runs go to worker processes (one
thread each); nothing is stored.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from defaults import label, source  # bundled names and archive paths, as defaults.py reads them
from nncompare.errors import run_main

SETS = ["GunPoint", "ItalyPowerDemand", "ArrowHead", "JapaneseVowels", "OSULeaf", "PickupGestureWiimoteZ", "BasicMotions", "Covid3Month_disc"]
MODELS = ["mlp", "cnn", "tcn", "rnn", "lstm", "gru"]
LOSSES = [1e-2, 3e-3, 1e-3, 3e-4, 1e-4]  # mean training cross-entropy per example
STOPS = [f"<{x:g}" for x in LOSSES] + ["half", "end"]
HEADER = f"{'model':5} {'set':22} "  # the table's first line begins so; the stops follow


def one_run(set_name: str, model_name: str, seed: int, max_epochs: int | None) -> tuple[str, str, dict]:
    """{stop: (test accuracy, seconds trained when it fires, epoch)} for one run."""

    import torch

    from nncompare.data import load_dataset
    from nncompare.models import create_model
    from nncompare.runs.runner import config_for_model
    from nncompare.train import TrainConfig, fit
    from nncompare.train.steps import all_labelled, batch_norm_statistics, epoch_budget, evaluate
    from nncompare.utils import set_seed

    torch.set_num_threads(1)
    dataset = load_dataset(source(set_name))
    x, _, lengths = all_labelled(dataset, "cpu")  # what a stopped run trains on, and recomputes batch norms over
    config = TrainConfig(validation="none", max_epochs=max_epochs, fitted_loss=0, seed=seed)  # every epoch: the stops are read off the one run
    config = config_for_model(config, model_name).validate()
    half = max(1, epoch_budget(config, -(-len(x) // min(config.batch_size, len(x))))[0] // 2)
    set_seed(seed)  # as nncompare.train builds and trains a model
    model = create_model(model_name, dataset.meta)
    state = {"best": float("inf"), "weights": None, "seconds": 0.0, "found": {}}

    def test_kept(row):
        kept = copy.deepcopy(model)
        kept.load_state_dict(state["weights"])
        batch_norm_statistics(kept, x, lengths, min(config.batch_size, len(x)))
        _, acc = evaluate(kept, dataset.test.x, dataset.test.y, dataset.test.lengths)
        return acc, state["seconds"], row["epoch"]

    def on_epoch(row):
        state["seconds"] += row["seconds"]
        if row["train_loss"] < state["best"]:  # the Stopper's rule: the lowest training loss so far is kept
            state["best"], state["weights"] = row["train_loss"], copy.deepcopy(model.state_dict())
        for loss, stop in zip(LOSSES, STOPS):
            if stop not in state["found"] and row["train_loss"] < loss:
                state["found"][stop] = test_kept(row)
        if row["epoch"] == half:
            state["found"]["half"] = test_kept(row)

    result = fit(model, dataset, config, on_epoch=on_epoch)
    state["found"]["end"] = (result.metrics["score"], state["seconds"], len(result.history))
    return set_name, model_name, state["found"]


def run_all(description: str, run, models: list[str]) -> tuple[argparse.Namespace, list[str], list[str], dict, float]:
    """The command line this script and averaging.py share (--sets, --models, --seeds, --workers,
    --smoke), and every (set, model, seed) run of `run(set, model, seed, max_epochs)` -> (set, model,
    found) in worker processes: (args, sets, models, {(model, set): [found per seed]}, seconds)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--sets", default=",".join(SETS), help="bundled UCR/UEA names or paths of archive files (NAME_TRAIN beside NAME_TEST), comma-separated")
    p.add_argument("--models", default=",".join(models))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: ItalyPowerDemand, the MLP, 1 seed of 2 epochs")
    args = p.parse_args()
    max_epochs = None
    if args.smoke:
        args.sets, args.models, args.seeds, args.workers, max_epochs = "ItalyPowerDemand", "mlp", 1, 1, 2
    sets, models = args.sets.split(","), args.models.split(",")
    start = time.perf_counter()
    found: dict[tuple[str, str], list[dict]] = {}
    jobs = [(s, m, seed, max_epochs) for seed in range(args.seeds) for s in sets for m in models]
    with ProcessPoolExecutor(args.workers) as pool:
        for s, m, got in pool.map(run, *zip(*jobs)):
            found.setdefault((m, s), []).append(got)
    return args, sets, models, found, time.perf_counter() - start


def main() -> int:
    args, sets, models, found, seconds = run_all(__doc__.splitlines()[0], one_run, MODELS)
    print(f"test accuracy %, mean over {args.seeds} seed(s), and the share of the full run's training time; {seconds:.0f} s")
    print(HEADER + " ".join(f"{stop:>12}" for stop in STOPS))
    cell: dict[tuple[str, str, str], tuple[float, float]] = {}  # (model, set, stop): (accuracy %, share of the time)
    for m in models:
        for s in sets:
            runs = found[(m, s)]
            for stop in STOPS:
                got = [r[stop] if stop in r else r["end"] for r in runs]  # a seed that never got there trains to the end
                share = statistics.fmean(g[1] for g in got) / statistics.fmean(r["end"][1] for r in runs)
                cell[(m, s, stop)] = statistics.fmean(100 * g[0] for g in got), 100 * share
            print(f"{m:5} {label(s):22} " + " ".join(f"{cell[(m, s, stop)][0]:6.1f} {cell[(m, s, stop)][1]:4.0f}%" for stop in STOPS))
    print("per model over the sets: the mean change of accuracy against the end, the worst set's change, the mean share of the time")
    print(f"{'model':5} " + " ".join(f"{stop:>18}" for stop in STOPS[:-1]))
    for m in models:
        parts = []
        for stop in STOPS[:-1]:
            changes = [cell[(m, s, stop)][0] - cell[(m, s, "end")][0] for s in sets]
            parts.append(f"{statistics.fmean(changes):+6.2f} {min(changes):+5.1f} {statistics.fmean(cell[(m, s, stop)][1] for s in sets):4.0f}%")
        print(f"{m:5} " + " ".join(f"{p:>18}" for p in parts))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

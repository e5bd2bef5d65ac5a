"""MNIST-1D: the default comparison (all six models, 3 seeds) beside the published anchors.

    python benchmarks/mnist1d_reference.py [--seeds 3] [--store DIR] [--smoke]

Anchors: Greydanus, "Scaling down deep learning" (2020), README of github.com/greydanus/mnist1d:
MLP 68%, CNN 94%, GRU 91% test accuracy; the repository's own logged runs (6000 Adam steps, lr 1e-2,
batch 100) reach CNN 92.3-92.5%, GRU 89.1-91.1%, MLP 64.6-65.1%. Targets for nncompare's defaults:
CNN >= 94%, GRU >= 91%, MLP >= 66%, the whole comparison under 5 minutes of wall time on 2 cores.

`--smoke` (what the test suite runs, from an empty cache): the same table for the MLP, CNN and GRU
after 1 seed of 1 epoch each, in this process, the data set generated first; targets are not judged.

(This file is not called mnist1d.py: a script's folder comes first on `sys.path`, so that name would
shadow the `mnist1d` package that generates the data for every script in benchmarks/.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import nncompare
from nncompare.errors import run_main
from nncompare.train import TrainConfig
from nncompare.utils import available_cores

PUBLISHED = {"mlp": "68", "cnn": "94", "gru": "91"}
REPO_LOGS = {"mlp": "64.6-65.1", "cnn": "92.3-92.5", "gru": "89.1-91.1"}
TARGETS = {"mlp": 66.0, "cnn": 94.0, "gru": 91.0}
WALL_TARGET_S = 300
HEADER = f"{'model':6} {'params':>8} {'test acc % (mean ± std)':>24} {'seeds 0 1 2 ...':>22} {'train s':>8} {'published':>10} {'repo logs':>10} {'target':>8}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    p.add_argument("--smoke", action="store_true", help="MLP, CNN and GRU, 1 seed of 1 epoch each, in this process: checks that the script runs, judges nothing")
    args = p.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="nncompare-bench-")
    models, config, workers = None, None, None  # compare's defaults: every model, its rules, a worker per core
    if args.smoke:
        args.seeds, models, config, workers = 1, list(TARGETS), TrainConfig(max_epochs=1), 1

    nncompare.data.load_dataset("mnist1d")  # generate and cache outside the timed part, as a user's 2nd run
    start = time.perf_counter()
    result = nncompare.compare("mnist1d", models=models, seeds=args.seeds, config=config, workers=workers, store=store)
    wall = time.perf_counter() - start

    print(f"MNIST-1D, default comparison: {args.seeds} seeds per model, {available_cores()} cores, torch threads per worker {result.config['threads_per_worker']}, {result.config['workers']} workers")
    print(HEADER)
    ok = True
    for r in result.rows:
        accs = " ".join(f"{100 * a:.1f}" for a in r["scores"])
        target = TARGETS.get(r["model"])
        mean = 100 * r["score_mean"]
        verdict = ""
        if target is not None:
            met = mean >= target
            ok &= met
            verdict = f">={target:.0f} {'met' if met else 'MISSED'}"
        print(
            f"{r['model']:6} {r['params']:>8,} {mean:>17.1f} ± {100 * r['score_std']:.1f} {accs:>22} {r['train_seconds']:>8.1f} "
            f"{PUBLISHED.get(r['model'], '-'):>10} {REPO_LOGS.get(r['model'], '-'):>10} {verdict:>8}"
        )
    wall_ok = wall < WALL_TARGET_S
    print(f"wall time {wall:.1f} s for {len(result.runs)} runs (target < {WALL_TARGET_S} s: {'met' if wall_ok else 'MISSED'})")
    print(f"stored in {result.folder}")
    if args.smoke:
        print("smoke run (1 seed, 1 epoch): the targets above are not judged")
        return 0
    return 0 if ok and wall_ok else 1


if __name__ == "__main__":
    sys.exit(run_main(main))

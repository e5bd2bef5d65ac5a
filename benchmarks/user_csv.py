"""A bundled UCR set written out as a user's own CSV, compared by the default command for a file:
`nncompare compare FILE --label-column day_type`, nothing else.

    python benchmarks/user_csv.py [--set ItalyPowerDemand] [--seeds 3] [--layout wide|long] [--keep power.csv]
    python benchmarks/user_csv.py --smoke   # seconds: MLP and CNN, 1 seed of 1 epoch

The file is what a user tends to have, not what a loader was written for: an identifier column first
(`m1000`, `m1001`, ...), the steps as named columns (`h00`, `h01`, ...), the labels as words, and the
label column between two steps. `--layout long` writes the same series as a logger or a database
would, one row per time step: `meter_id`, an ISO `timestamp` (one day per series, one hour per step),
the value `kw` and the label `day_type`, each day's hours written newest first. The set's train and test series go into one file, so the comparison
makes its own stratified test split. Nothing here names the set to nncompare: the same rules that
decide for `ucr:NAME` (identifier set aside, series or table, validation protocol, reference) decide
for the file (issue 19: no special cases).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

import nncompare
from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.train import TrainConfig

HEADER = f"{'model':12} {'test acc % (mean ± std)':>24} {'train s':>8}"
LABEL_COLUMN = "day_type"


def write_csv(name: str, path: str, layout: str = "wide") -> tuple[int, int]:
    """Write ucr:`name` (train, validation and test series) to `path` as described above; (series, steps)."""
    dataset = load_dataset(f"ucr:{name}")
    parts = [dataset.train, dataset.val, dataset.test]
    x = np.concatenate([p.x.numpy().reshape(len(p.x), -1) for p in parts if len(p.x)])
    y = np.concatenate([p.y.numpy() for p in parts if len(p.x)])
    words = [f"class_{c}" for c in dataset.meta.class_names] or [f"class_{k}" for k in range(dataset.meta.n_classes)]
    steps = x.shape[1]
    middle = steps // 2
    names = [f"h{i:02d}" for i in range(steps)]
    if layout == "long":
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["meter_id", "timestamp", "kw", LABEL_COLUMN])
            day0 = np.datetime64("2024-01-01T00:00")
            for i, (row, label) in enumerate(zip(x, y)):
                for t in reversed(range(steps)):
                    w.writerow([f"m{1000 + i}", str(day0 + np.timedelta64(24 * i + t, "h")), f"{row[t]:.5g}", words[int(label)]])
        return len(x), steps
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["meter_id", *names[:middle], LABEL_COLUMN, *names[middle:]])
        for i, (row, label) in enumerate(zip(x, y)):
            values = [f"{v:.5g}" for v in row]
            w.writerow([f"m{1000 + i}", *values[:middle], words[int(label)], *values[middle:]])
    return len(x), steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", default="ItalyPowerDemand", help="the bundled UCR/UEA set of equal-length univariate series to write out")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--layout", choices=["wide", "long"], default="wide", help="one series per row (default), or one row per time step")
    p.add_argument("--keep", default=None, help="also keep the CSV at this path")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: MLP and CNN, 1 seed of 1 epoch")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="nncompare-bench-")
    path = args.keep or os.path.join(work, "user.csv")
    n, steps = write_csv(args.set, path, args.layout)
    if args.layout == "long":
        print(f"{path}: {n * steps} rows, one per time step of {n} series of {steps} steps: meter_id, timestamp, kw, {LABEL_COLUMN}")
    else:
        print(f"{path}: {n} rows, an id column, {steps} step columns, labels in '{LABEL_COLUMN}'")
    options = {"models": ["mlp", "cnn"], "config": TrainConfig(max_epochs=1), "workers": 1} if args.smoke else {}
    seeds = 1 if args.smoke else args.seeds
    start = time.perf_counter()
    result = nncompare.compare(path, seeds=seeds, store=os.path.join(work, "store"), data_options={"label_column": LABEL_COLUMN}, **options)
    wall = time.perf_counter() - start
    print(HEADER)
    for r in result.rows:
        print(f"{r['model']:12} {100 * r['score_mean']:>17.1f} ± {100 * r['score_std']:<4.1f} {r['train_seconds']:>8.1f}")
    ref = result.reference
    if ref:
        print(f"{ref['model'] + ' (ref)':12} {100 * ref['score_mean']:>17.1f}        {ref['train_seconds']:>8.1f}")
    best = max((r for r in result.rows if r["n_done"]), key=lambda r: r["score_mean"])
    print(f"best network {best['model']} {100 * best['score_mean']:.1f}" + (f"; reference {100 * ref['score_mean']:.1f}" if ref else "") + f"; {len(result.rows) * seeds} runs in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Semi-supervised learning on MNIST-1D with 400 labels: CNN and GRU, supervised only vs pseudo-labelling
vs mean teacher, beside fully supervised training.

    python benchmarks/semisupervised.py [--labels 400] [--seeds 3] [--models cnn,gru] [--data mnist1d]
    python benchmarks/semisupervised.py --smoke   # seconds: the CNN, 100 labels of seqdigits, 1 seed of 1 epoch

The labelled examples are a stratified subset of the training split, fixed for every model and seed;
the rest of the training split is used without its labels (`nncompare compare --labels N --semi M`).
Validation and test splits are the usual ones. Target (issue 4): the best semi-supervised method at
least 5 points above supervised-only for a model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import nncompare
from nncompare.errors import run_main
from nncompare.train import TrainConfig

HEADER = f"  {'model':6}{'all labels':>18}{'supervised only':>18}{'pseudo':>18}{'meanteacher':>18}{'best gain':>14}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, default=400)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--models", default="cnn,gru")
    p.add_argument("--data", default="mnist1d")
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: the CNN, 100 labels of the small seqdigits set, 1 seed of 1 epoch, in this process; the target is not judged")
    args = p.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="nncompare-semi-")
    rules, workers = {}, None  # nncompare's rules, a worker per core
    if args.smoke:
        args.data, args.labels, args.seeds, args.models = "seqdigits", 100, 1, "cnn"
        rules, workers = {"max_epochs": 1}, 1
    models = args.models.split(",")
    columns = {}
    for name, config in (
        ("all labels", TrainConfig(**rules)),
        ("supervised only", TrainConfig(labels=args.labels, **rules)),
        ("pseudo", TrainConfig(labels=args.labels, semi="pseudo", **rules)),
        ("meanteacher", TrainConfig(labels=args.labels, semi="meanteacher", **rules)),
    ):
        start = time.perf_counter()
        result = nncompare.compare(args.data, models=models, seeds=args.seeds, config=config, store=store, workers=workers)
        columns[name] = {r["model"]: r for r in result.rows}
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    n_train = nncompare.data.load_dataset(args.data).sizes()["train"]
    print(f"\n{args.data}: {args.labels} of {n_train} training examples labelled, {args.seeds} seeds, test accuracy % (mean ± std)")
    print(HEADER)
    met = False
    for m in models:
        cells = "".join(f"{100 * columns[c][m]['score_mean']:>11.1f} ± {100 * columns[c][m]['score_std']:<4.1f}" for c in columns)
        base = columns["supervised only"][m]["score_mean"]
        gain = 100 * (max(columns["pseudo"][m]["score_mean"], columns["meanteacher"][m]["score_mean"]) - base)
        met |= gain >= 5
        print(f"  {m:6}{cells}{gain:>+11.1f} pts")
    print(f"  target: best semi-supervised method >= +5 points over supervised only for a model: {'met' if met else 'MISSED'}")
    if args.smoke:
        print("  smoke run (1 seed, 1 epoch): the target is not judged")
        return 0
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(run_main(main))

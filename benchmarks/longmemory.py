"""Long memory: the adding problem and copy memory, recurrent and convolutional models at one size.

    python benchmarks/longmemory.py [--params 10000] [--seeds 1] [--adding 200] [--copy 100] [--epochs 50] [--patience N]
    python benchmarks/longmemory.py --smoke   # seconds: adding T=20, copy T=10, 5000 parameters, 1 epoch

Tasks as defined in Bai, Kolter & Koltun, "An Empirical Evaluation of Generic Convolutional and
Recurrent Networks for Sequence Modeling" (2018), at lengths that train on 2 cores (the paper used
adding T=600 and copy T=1000). Every model is sized to the same parameter budget (`--params`, each
count within 5%), trained with the rules of `nncompare compare` except the stopping rule (50 epochs
of 32 steps and no early stop: the loss sits at the baseline for hundreds of steps before it falls),
and scored beside the task's trivial baseline: always predicting 1 on adding (MSE 1/6), a
memoryless predictor on copy (10 ln 8 / (T + 20)).

The paper's finding, for comparison: the TCN and the GRU solve adding (test MSE ~5e-5) while the LSTM
and the vanilla RNN stay at the trivial baseline; only the TCN solves copy memory. Here a model counts
as having solved a task when its test score is below 1% of the trivial baseline, and as having
learned nothing when it stays above 90% of it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import nncompare
from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.models import get_model_info
from nncompare.train import TrainConfig

MODELS = ["tcn", "cnn", "gru", "lstm", "rnn"]
HEADER = f"{'model':6} {'size':>16} {'params':>7}"  # then the task's score, the verdict, the paper's
PAPER = {  # the paper's outcome per task (Bai et al. 2018, Table 1 and Section 4.2), as the issue states it
    "adding": {"tcn": "solved", "gru": "solved", "lstm": "baseline", "rnn": "baseline", "cnn": "-"},
    "copy": {"tcn": "solved", "gru": "not solved", "lstm": "not solved", "rnn": "not solved", "cnn": "-"},
}


def verdict(score: float, baseline: float) -> str:
    ratio = score / baseline
    if ratio < 0.01:
        return "solved"
    if ratio > 0.9:
        return "baseline"
    return "partly"


def run_task(data: str, family: str, args, store: str) -> None:
    meta = load_dataset(data).meta
    # no early stop by default: on these tasks the loss sits at the baseline for hundreds of steps
    # before it falls, and a patience of 10 epochs would end a run inside that plateau
    config = TrainConfig(max_epochs=args.epochs, patience=args.patience or args.epochs, max_seconds=args.max_seconds)
    start = time.perf_counter()
    result = nncompare.compare(data, models=MODELS, seeds=args.seeds, config=config, params=args.params, store=store, workers=1 if args.smoke else None)
    wall = time.perf_counter() - start
    base = meta.baseline
    print(f"\n{data}: {meta.description}")
    print(f"  {args.seeds} seed(s), parameter budget {args.params:,}; wall {wall:.0f} s; trivial baseline ({base['name']}): {base['score_name']} {base['expected']:.4g}")
    print(f"  {HEADER} {base['score_name'] + ' (mean ± std)':>28} {'/ baseline':>10} {'epochs':>7} {'train s':>8} {'here':>9} {'paper':>10}")
    for r in result.rows:
        width_name = get_model_info(r["model"]).width
        size = f"{width_name}={result.config['model_args'][r['model']][width_name]}"  # as solved for the budget
        ratio = r["score_mean"] / base["expected"]
        spread = f"± {r['score_std']:<6.2g}" if args.seeds > 1 else " " * 8
        print(
            f"  {r['model']:6} {size:>16} {r['params']:>7,} {r['score_mean']:>19.3g} {spread} "
            f"{ratio:>10.2g} {r['epochs']:>7.0f} {r['train_seconds']:>8.0f} {verdict(r['score_mean'], base['expected']):>9} {PAPER[family][r['model']]:>10}"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", type=int, default=10_000, help="parameter budget every model is sized to (default 10000)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--adding", type=int, default=200, help="T of the adding problem (default 200)")
    p.add_argument("--copy", type=int, default=100, help="T of copy memory (default 100)")
    p.add_argument("--epochs", type=int, default=50, help="most epochs per run (default 50: 1600 steps)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (default: the whole run)")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget per run")
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: adding T=20 and copy T=10, every model at 5000 parameters, 1 seed of 1 epoch, in this process")
    args = p.parse_args()
    if args.smoke:
        args.params, args.seeds, args.adding, args.copy, args.epochs, args.patience = 5000, 1, 20, 10, 1, None
    store = args.store or tempfile.mkdtemp(prefix="nncompare-bench-")
    run_task(f"adding:{args.adding}", "adding", args, store)
    run_task(f"copy:{args.copy}", "copy", args, store)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Text: bits per character of every model on the built-in corpus, beside the unigram baseline.

    python benchmarks/text.py [--seeds 1] [--data text] [--epochs N] [--max-seconds S]

The built-in corpus (`text`) is the Python standard library's own source, read in a fixed order, so
the figures repeat on any machine with the same Python version. Each model predicts the next
character at every position of 128-character windows (the MLP from the 32 characters before it, the
CNN from its receptive field, the TCN and the recurrent models from everything before). The baseline
is the cross-entropy of the test block under the training block's character frequencies: a model that
learned nothing about order scores that; every bit below it is context the model uses.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import nncompare
from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.train import TrainConfig

MODELS = ["mlp", "cnn", "tcn", "rnn", "lstm", "gru"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--data", default="text", help="text (built in) or text:FILE")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=None, help="most epochs per run (default: compare's default)")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget per run")
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    args = p.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="nncompare-bench-")

    dataset = load_dataset(args.data)
    meta, base = dataset.meta, dataset.meta.baseline
    config = TrainConfig(max_epochs=args.epochs, max_seconds=args.max_seconds)
    start = time.perf_counter()
    result = nncompare.compare(args.data, models=args.models.split(","), seeds=args.seeds, config=config, store=store)
    wall = time.perf_counter() - start

    print(f"{meta.name}: {meta.description}")
    print(f"sizes {dataset.sizes()}; {args.seeds} seed(s); wall {wall:.0f} s")
    print(f"baseline ({base['name']}): {base['expected']:.3f} bits/char")
    print(f"{'model':6} {'params':>9} {'test bits/char (mean ± std)':>28} {'vs baseline':>12} {'epochs':>7} {'train s':>8}")
    for r in result.rows:
        spread = f"± {r['score_std']:<5.3f}" if args.seeds > 1 else " " * 7
        print(
            f"{r['model']:6} {r['params']:>9,} {r['score_mean']:>21.3f} {spread} "
            f"{r['score_mean'] - base['expected']:>+12.3f} {r['epochs']:>7.0f} {r['train_seconds']:>8.0f}"
        )
    print(f"stored in {result.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

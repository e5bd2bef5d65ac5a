"""Ablation on MNIST-1D: the CNN and the LSTM plain, with each bell or whistle alone, and with all.

    python benchmarks/ablation.py [--seeds 3] [--data mnist1d] [--cnn-bells norm,residual,cosine,weight-decay,augment] [--lstm-bells norm,dropout,cosine,weight-decay,augment]
    python benchmarks/ablation.py --smoke   # seconds: 1 seed, 1 epoch, one bell per model, on seqdigits

"Plain" is the model with every extra off (no dropout, no normalisation), trained by the rules of
`nncompare compare`; each bell is added alone, then all together (`nncompare ablate`). A gain is the
mean ± std over seeds of (variant's test accuracy - plain's test accuracy with the same seed).
For orientation, the MNIST-1D paper (Greydanus 2020) reports CNN 94% and GRU 91% test accuracy with
no extras; the plain rows here are the same kind of model under nncompare's rules.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from nncompare.runs.ablate import ablate
from nncompare.errors import run_main
from nncompare.train import TrainConfig

HEADER = "score (mean ± std)"  # a column of the ablation table that nncompare's Ablation.table() prints


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--data", default="mnist1d")
    p.add_argument("--cnn-bells", default="norm,residual,cosine,weight-decay,augment")
    p.add_argument("--lstm-bells", default="norm,dropout,cosine,weight-decay,augment")
    p.add_argument("--models", default="cnn,lstm", help="which of the two to ablate (default: both)")
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: 1 seed, 1 epoch, one bell per model, in this process, on the small seqdigits set")
    args = p.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="nncompare-ablation-")
    config, workers = None, None  # nncompare's rules, a worker per core
    if args.smoke:
        args.seeds, args.data, args.cnn_bells, args.lstm_bells = 1, "seqdigits", "norm", "norm"
        config, workers = TrainConfig(max_epochs=1), 1
    for model, bells in (("cnn", args.cnn_bells), ("lstm", args.lstm_bells)):
        if model not in args.models.split(","):
            continue
        start = time.perf_counter()
        result = ablate(args.data, model, bells, seeds=args.seeds, config=config, store=store, workers=workers)
        print(f"\n{model} on {args.data}, {args.seeds} seeds, {time.perf_counter() - start:.0f} s")
        print("  " + result.table().replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

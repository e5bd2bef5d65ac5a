"""Order sensitivity on MNIST-1D: accuracy with the input positions in order and shuffled by one fixed
permutation (the same for train and test; every model retrained), beside the published figures.

    python benchmarks/order_sensitivity.py [--models mlp,cnn,gru] [--seeds 3] [--data mnist1d]
    python benchmarks/order_sensitivity.py --smoke   # seconds: seqdigits, 1 seed of 1 epoch, no report

Published (Greydanus 2020, "Scaling down deep learning", MNIST-1D shuffled-positions experiment):
MLP 68 -> 68, CNN 94 -> 56, GRU 91 -> 57 (% test accuracy). Models that tie weights across positions
lose when neighbouring positions stop meaning neighbours; the MLP, with a weight per position, does not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import nncompare
from nncompare.errors import run_main
from nncompare.train import TrainConfig

PUBLISHED = {"mlp": (68, 68), "cnn": (94, 56), "gru": (91, 57)}
HEADER = f"{'model':6} {'in order':>13} {'shuffled':>13} {'change':>7}   published (in order -> shuffled)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mlp,cnn,gru")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--data", default="mnist1d")
    p.add_argument("--store", default=None, help="store folder (default: a temporary one)")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: the small seqdigits set, 1 seed of 1 epoch, in this process, no report")
    args = p.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="nncompare-order-")
    config, workers = None, None  # nncompare's rules, a worker per core
    if args.smoke:
        args.data, args.seeds, config, workers = "seqdigits", 1, TrainConfig(max_epochs=1), 1
    start = time.perf_counter()
    result = nncompare.compare(args.data, models=args.models.split(","), seeds=args.seeds, config=config, workers=workers, store=store, order=True, report=not args.smoke)
    shuffled = {r["model"]: r for r in result.order}
    print(f"{args.data}: test accuracy %, mean ± std over {args.seeds} seeds; positions shuffled by one fixed permutation")
    print(HEADER)
    for r in result.rows:
        s = shuffled[r["model"]]
        a, b = 100 * r["score_mean"], 100 * s["score_mean"]
        pub = PUBLISHED.get(r["model"]) if args.data == "mnist1d" else None
        pub_text = f"{pub[0]} -> {pub[1]} ({pub[1] - pub[0]:+d})" if pub else "-"
        print(f"{r['model']:6} {a:6.1f} ± {100 * r['score_std']:4.1f} {b:6.1f} ± {100 * s['score_std']:4.1f} {b - a:+7.1f}   {pub_text}")
    print(f"{len(result.runs) + len(result.order) * args.seeds} runs in {time.perf_counter() - start:.0f} s; report: {result.report[0] if result.report else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

"""Recurrent speed: time per training step of torch's fused RNN/LSTM/GRU and of nncompare's
equation-written cells (the path layer norm and recurrent dropout run on, and on a CPU the default
GRU's), same weights, same batch.

    python benchmarks/recurrent.py [--hidden 6,64,256] [--lengths 40,200,1000] [--batch 32] [--threads 1]

A training step = forward over the sequence, cross-entropy on the last state's head, backward, Adam.
Each point is the fastest of repeated steps over at least --seconds (after a warm-up step). Target
(issue 7): the equation-written cells within 1.5x of the fused ones.
"""

from __future__ import annotations

import argparse
import sys

import torch

from nncompare.data.base import DatasetMeta
from nncompare.errors import run_main
from nncompare.models import create_model
from nncompare.scaling import time_model
from nncompare.utils import set_seed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--hidden", default="6,64,256")
    p.add_argument("--lengths", default="40,200,1000")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=0.3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"ms per training step (batch {args.batch}, 1 input feature, {args.threads} thread(s)); ratio = equations / fused")
    print(f"{'cell':5} {'H':>4} {'L':>5} {'fused':>9} {'equations':>10} {'ratio':>6}")
    ratios = []
    for cell in args.cells.split(","):
        for h in map(int, args.hidden.split(",")):
            for n in map(int, args.lengths.split(",")):
                meta = DatasetMeta(name="bench", kind="series", task="classify", input_shape=(n, 1), n_classes=10)
                gen = torch.Generator().manual_seed(0)
                x, y = torch.randn(args.batch, n, 1, generator=gen), torch.randint(0, 10, (args.batch,), generator=gen)
                times = {}
                for impl in ("fused", "equations"):
                    set_seed(0)
                    model = create_model(cell, meta, hidden_size=h, impl=impl)
                    times[impl] = time_model(model, x, y, args.seconds)[0]
                ratio = times["equations"] / times["fused"]
                ratios.append(ratio)
                print(f"{cell:5} {h:>4} {n:>5} {1e3 * times['fused']:9.2f} {1e3 * times['equations']:10.2f} {ratio:6.2f}", flush=True)
    ratios.sort()
    print(f"equations / fused: median {ratios[len(ratios) // 2]:.2f}, worst {ratios[-1]:.2f}, best {ratios[0]:.2f} over {len(ratios)} points (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

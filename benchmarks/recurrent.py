"""Recurrent speed: time per training step of torch's fused RNN/LSTM/GRU (the default on every device)
and of nncompare's cells written from their equations (plain autograd loops in Python: the path layer
norm and recurrent dropout run on), same weights, same batch.

    python benchmarks/recurrent.py [--cells rnn,lstm,gru] [--hidden 6,64,256] [--lengths 40,200,1000]
                                   [--batch 32] [--threads 1] [--denormals flush|keep] [--smoke]

A training step = forward over the sequence, cross-entropy on the last state's head, backward, Adam.
Each point is the fastest of repeated steps over at least --seconds (after a warm-up step).
Denormal numbers are flushed to zero by default, as nncompare's trainer does on a CPU (torch's fused
LSTM is slowed by them on long sequences: at 64 units and 200 steps 156.7 ms a step with them, 20.5 ms
flushed, measured); `--denormals keep` times torch's default. `--smoke` (seconds, not a measurement):
every cell at 6 units over 40 steps.
"""

from __future__ import annotations

import argparse
import sys

import torch

from nncompare.data.base import DatasetMeta
from nncompare.errors import run_main
from nncompare.models import create_model
from nncompare.runs.scaling import time_model
from nncompare.utils import set_seed


HEADER = f"{'cell':5} {'H':>4} {'L':>5} {'fused':>9} {'equations':>10} {'ratio':>6}"  # the table's first line

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--hidden", default="6,64,256")
    p.add_argument("--lengths", default="40,200,1000")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=0.3)
    p.add_argument("--denormals", choices=("flush", "keep"), default="flush")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: every cell at 6 units over 40 steps, 0.02 s a point")
    args = p.parse_args()
    if args.smoke:
        args.hidden, args.lengths, args.seconds = "6", "40", 0.02
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.denormals == "flush")
    print(f"ms per training step (batch {args.batch}, 1 input feature, {args.threads} thread(s), denormals {'flushed' if args.denormals == 'flush' else 'kept'}); ratio = equations / fused")
    print(HEADER)
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
                ratios.append(times["equations"] / times["fused"])
                print(f"{cell:5} {h:>4} {n:>5} {1e3 * times['fused']:9.2f} {1e3 * times['equations']:10.2f} {ratios[-1]:6.2f}", flush=True)
    ratios.sort()
    print(f"equations / fused: median {ratios[len(ratios) // 2]:.2f}, worst {ratios[-1]:.2f}, best {ratios[0]:.2f} over {len(ratios)} points")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

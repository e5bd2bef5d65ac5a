"""Recurrent speed: time per training step of torch's fused RNN/LSTM/GRU and of nncompare's
equation-written cells (the path layer norm and recurrent dropout run on, and on a CPU the default
GRU's), same weights, same batch.

    python benchmarks/recurrent.py [--cells rnn,lstm,gru] [--hidden 6,64,256] [--lengths 40,200,1000]
                                   [--batch 32] [--threads 1] [--denormals flush|keep]

A training step = forward over the sequence, cross-entropy on the last state's head, backward, Adam.
Each point is the fastest of repeated steps over at least --seconds (after a warm-up step). Target
(issue 7): the equation-written cells within 1.5x of the fused ones.

The LSTM's equations run their loops compiled from C where this machine has a compiler
(models/native.py); its rows also time the same loops in Python ("no compiler"), what a machine
without one runs. Denormal numbers are flushed to zero by default, on both paths, as nncompare's
trainer does on a CPU: the compiled loops always flush them, and torch's fused LSTM is slowed by them
on long sequences (at 64 units and 200 steps 156.7 ms a step with them, 20.5 ms flushed, measured), so
comparing it unflushed would flatter the compiled loops. `--denormals keep` times torch's default.
"""

from __future__ import annotations

import argparse
import sys

import torch

from nncompare.data.base import DatasetMeta
from nncompare.errors import run_main
from nncompare.models import create_model, native
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
    p.add_argument("--denormals", choices=("flush", "keep"), default="flush")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.denormals == "flush")
    compiled = native.lstm_library()
    print(native.native_status())
    print(f"ms per training step (batch {args.batch}, 1 input feature, {args.threads} thread(s), denormals {'flushed' if args.denormals == 'flush' else 'kept'}); ratio = equations / fused")
    print(f"{'cell':5} {'H':>4} {'L':>5} {'fused':>9} {'equations':>10} {'ratio':>6}   {'no compiler':>11} {'ratio':>6}")
    ratios, python_ratios = [], []
    for cell in args.cells.split(","):
        for h in map(int, args.hidden.split(",")):
            for n in map(int, args.lengths.split(",")):
                meta = DatasetMeta(name="bench", kind="series", task="classify", input_shape=(n, 1), n_classes=10)
                gen = torch.Generator().manual_seed(0)
                x, y = torch.randn(args.batch, n, 1, generator=gen), torch.randint(0, 10, (args.batch,), generator=gen)
                paths = ["fused", "equations"] + (["python"] if cell == "lstm" and compiled is not None else [])
                times = {}
                for path in paths:
                    saved = dict(native._state)
                    if path == "python":  # the loops in Python, as without a compiler
                        native._state.update(lib=None, why="timed without it")
                    try:
                        set_seed(0)
                        model = create_model(cell, meta, hidden_size=h, impl="fused" if path == "fused" else "equations")
                        times[path] = time_model(model, x, y, args.seconds)[0]
                    finally:
                        native._state.clear()
                        native._state.update(saved)
                ratio = times["equations"] / times["fused"]
                ratios.append(ratio)
                line = f"{cell:5} {h:>4} {n:>5} {1e3 * times['fused']:9.2f} {1e3 * times['equations']:10.2f} {ratio:6.2f}"
                if "python" in times:
                    python_ratios.append(times["python"] / times["fused"])
                    line += f"   {1e3 * times['python']:11.2f} {python_ratios[-1]:6.2f}"
                print(line, flush=True)
    for label, values in (("equations / fused", ratios), ("LSTM without a compiler / fused", python_ratios)):
        if values:
            values.sort()
            print(f"{label}: median {values[len(values) // 2]:.2f}, worst {values[-1]:.2f}, best {values[0]:.2f} over {len(values)} points (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

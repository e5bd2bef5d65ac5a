"""The physical limit: achieved FLOP/s of each model's training step beside a large matrix multiply's.

    python benchmarks/flops.py [--data mnist1d] [--batch 128] [--size 2048] [--seconds 1]
    python benchmarks/flops.py --smoke   # seconds: seqdigits, batch 16, a 256 x 256 multiply, 1 thread, short timings

For every model at its default size on DATA's shapes: the FLOPs of one training step (forward, loss,
backward; counted by torch.utils.flop_counter, matrix multiplies and convolutions as 2 FLOPs per
multiply-add, recurrent layers on their equation-written path since the fused kernels are not
counted), the time of one step (forward, backward, Adam; the fastest of repeats), and the FLOP/s that
makes, beside an SIZE x SIZE float32 matrix multiply on the same machine. Measured with 1 torch thread
(what each run of a comparison gets when there are at least as many runs as cores) and with every core.

Small models on a CPU are far from the matmul's rate: the time goes to per-operation overhead, not
arithmetic. The table puts that distance on record.
"""

from __future__ import annotations

import argparse
import sys

import torch

from nncompare.analysis import training_step_flops
from nncompare.data import load_dataset
from nncompare.errors import UserError, run_main
from nncompare.models import count_parameters, create_model, model_names
from nncompare.runs.scaling import _repeat, time_model
from nncompare.utils import available_cores, set_seed

HEADER = f"{'model':6} {'params':>8} {'MFLOP/step':>11}"  # then a time and a rate per thread count


def matmul_flops_per_second(n: int, seconds: float) -> float:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    return 2 * n**3 / _repeat(lambda: a @ b, seconds)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist1d")
    p.add_argument("--models", default=",".join(model_names()))
    p.add_argument("--batch", type=int, default=128, help="examples per step (nncompare's default batch)")
    p.add_argument("--size", type=int, default=2048, help="the matrix multiply's side")
    p.add_argument("--seconds", type=float, default=1.0, help="each timing repeats for at least this long")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: every model on the small seqdigits set, batch 16, a 256 x 256 multiply, 1 thread, timings of 0.02 s")
    args = p.parse_args()
    if args.smoke:
        args.data, args.batch, args.size, args.seconds = "seqdigits", 16, 256, 0.02
    data = load_dataset(args.data)
    if data.meta.task != "classify":
        raise UserError(f"benchmarks/flops.py times classification steps, and {args.data} is a {data.meta.task} task; pick a classification data set such as mnist1d")
    x, y = data.train.x[: args.batch], data.train.y[: args.batch]
    thread_counts = [1] if args.smoke else sorted({1, available_cores()})  # smoke: no threads waiting on a busy machine

    peak = {}
    for t in thread_counts:
        torch.set_num_threads(t)
        peak[t] = matmul_flops_per_second(args.size, args.seconds)
    print(f"{args.size}x{args.size} float32 matrix multiply: " + ", ".join(f"{peak[t] / 1e9:.1f} GFLOP/s with {t} thread(s)" for t in thread_counts))
    print(f"training step on {args.data}, batch {args.batch} (forward, backward, Adam):")
    head = HEADER
    for t in thread_counts:
        head += f" {f'ms ({t}t)':>9} {f'GFLOP/s ({t}t)':>14} {'of matmul':>9}"
    print(head)
    for name in args.models.split(","):
        set_seed(0)
        model = create_model(name, data.meta)
        flops = training_step_flops(model, x, y)
        line = f"{name:6} {count_parameters(model):>8,} {flops / 1e6:>11.1f}"
        for t in thread_counts:
            torch.set_num_threads(t)
            step = time_model(model, x, y, args.seconds)[0]
            rate = flops / step
            line += f" {1e3 * step:>9.2f} {rate / 1e9:>14.2f} {100 * rate / peak[t]:>8.1f}%"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

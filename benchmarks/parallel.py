"""Using the cores: the default comparison in parallel workers against the same runs one after another.

    python benchmarks/parallel.py [--data mnist1d] [--models all] [--seeds 3] [--naive]
    python benchmarks/parallel.py --smoke   # seconds: the MLP, 2 seeds of 1 epoch, on the small seqdigits set

Runs `nncompare.compare(DATA)` twice: with its default workers (one per core) and with `workers=1`
(the same runs one after another, each with the same number of torch threads, so the numbers must
not change). Prints both wall times, the speedup, and checks that every run's test loss, accuracy,
stopping epoch and stored weights (SHA-256 of model.safetensors) are identical.

`--naive` also times the loop a user would write without nncompare's scheduler: the runs one after
another, each with torch's default threads (all cores for one run); its numbers may differ in the
last bits (a float sum split over other threads rounds differently), so only its time is reported.

Target (issue 7): the default mnist1d comparison at least 1.6x faster than one after another on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import torch

import nncompare
from nncompare.errors import run_main
from nncompare.models import model_names
from nncompare.train import TrainConfig
from nncompare.utils import available_cores

TARGET = 1.6
SAME = ("test_loss", "score", "val_loss", "best_epoch", "epochs", "stop_reason")
HEADER = "identical per-run results (test loss, accuracy, stopping epoch, weights' SHA-256)"


def timed(data, models, seeds, **kw):
    start = time.perf_counter()
    result = nncompare.compare(data, models=models, seeds=seeds, store=tempfile.mkdtemp(prefix="nncompare-parallel-"), **kw)
    return time.perf_counter() - start, result


def fingerprint(result) -> dict:
    """(model, seed) -> the numbers that must repeat, plus the hash of the stored weights."""
    out = {}
    for run in result.runs:
        weights = Path(result.folder) / f"{run['model']}-seed{run['seed']}" / "model.safetensors"
        out[run["model"], run["seed"]] = {**{k: run.get(k) for k in SAME}, "weights": hashlib.sha256(weights.read_bytes()).hexdigest()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="mnist1d")
    p.add_argument("--models", default=None, help="comma-separated (default: every model, as `nncompare compare`)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--naive", action="store_true", help="also time the runs one after another with torch's default threads")
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: the MLP, 2 seeds of 1 epoch (still 2 workers against 1), on the small seqdigits set; the speedup is not judged")
    args = p.parse_args()
    config, workers = None, None  # nncompare's rules, a worker per core
    if args.smoke:  # 2 workers even on 1 core: the pool is what this script is about
        args.data, args.models, args.seeds, config, workers = "seqdigits", "mlp", 2, TrainConfig(max_epochs=1), 2
    models = args.models.split(",") if args.models else None
    nncompare.data.load_dataset(args.data)  # generate and cache outside the timed part, as on a user's second run

    parallel_s, parallel = timed(args.data, models, args.seeds, config=config, workers=workers)
    serial_s, serial = timed(args.data, models, args.seeds, config=config, workers=1)
    a, b = fingerprint(parallel), fingerprint(serial)
    differing = sorted(k for k in a if a[k] != b.get(k))
    n = len(a)
    threads = parallel.config["threads_per_worker"]
    print(f"{args.data}: {n} runs ({', '.join(sorted({m for m, _ in a}))} x {args.seeds} seeds), {available_cores()} cores, {threads} torch thread(s) per run")
    print(f"  {parallel.config['workers']} workers{' (default)' if workers is None else ''}: {parallel_s:8.1f} s")
    print(f"  1 worker, one run after another:  {serial_s:8.1f} s")
    speedup = serial_s / parallel_s
    print(f"  speedup {speedup:.2f}x (target >= {TARGET}x: {'met' if speedup >= TARGET else 'MISSED'})")
    print(f"  {HEADER}: {n - len(differing)} of {n} runs" + (f"; differing: {differing}" if differing else ""))
    if args.naive:
        torch.set_num_threads(available_cores())
        start = time.perf_counter()
        for model in models or model_names():
            for seed in range(args.seeds):
                nncompare.train(args.data, model=model, seed=seed, config=config)  # trains as compare does; stores nothing
        naive_s = time.perf_counter() - start
        print(f"  naive loop (one run after another, torch's {torch.get_num_threads()} threads each): {naive_s:8.1f} s -> default is {naive_s / parallel_s:.2f}x faster")
    if args.smoke:
        print("  smoke run: the speedup is not judged; the per-run results must still be identical")
        return 1 if differing else 0
    return 0 if speedup >= TARGET and not differing else 1


if __name__ == "__main__":
    sys.exit(run_main(main))

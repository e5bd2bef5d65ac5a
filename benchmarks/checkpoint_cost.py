"""What checkpoints cost a run: milliseconds per epoch of `fit` without a checkpoint, with one at every
epoch end (NNCOMPARE_CHECKPOINT_SECONDS=0) and with the default interval (train/checkpoint.py).

    python benchmarks/checkpoint_cost.py [--data ucr:ArrowHead] [--models mlp,cnn,gru] [--epochs 100]
    python benchmarks/checkpoint_cost.py --smoke   # seconds: ItalyPowerDemand, the MLP, 5 epochs

One thread; each model trains the same seed three times (no checkpoint, every epoch, the interval) under
validation="none" (a small set's default protocol), after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.models import create_model, get_model_info
from nncompare.train import TrainConfig, fit
from nncompare.train.checkpoint import (
    CHECKPOINT_SECONDS,
    INTERVAL_VARIABLE,
    Checkpointer,
)
from nncompare.utils import set_seed

HEADER = f"{'data':22} {'model':6} {'no checkpoint':>14} {'every epoch':>12} {'interval':>10}  (ms per epoch)"


def ms_per_epoch(dataset, model: str, epochs: int, interval: str | None) -> float:
    if interval is not None:
        os.environ[INTERVAL_VARIABLE] = interval
    checkpoint = Checkpointer(tempfile.mkdtemp(prefix="nncompare-ckpt-"), "bench") if interval is not None else None
    set_seed(0)
    net = create_model(model, dataset.meta)
    start = time.perf_counter()
    fit(net, dataset, TrainConfig(max_epochs=epochs, lr=get_model_info(model).default_lr, validation="none", fitted_loss=0), checkpoint=checkpoint)
    return 1000 * (time.perf_counter() - start) / epochs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="ucr:ArrowHead")
    p.add_argument("--models", default="mlp,cnn,gru")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: ucr:ItalyPowerDemand, the MLP, 5 epochs")
    args = p.parse_args()
    if args.smoke:
        args.data, args.models, args.epochs = "ucr:ItalyPowerDemand", "mlp", 5
    torch.set_num_threads(1)
    dataset = load_dataset(args.data)
    fit(create_model("mlp", dataset.meta), dataset, TrainConfig(max_epochs=2, lr=1e-3, validation="none", fitted_loss=0))  # imports and first calls
    print(HEADER)
    saved = os.environ.get(INTERVAL_VARIABLE)
    try:
        for model in args.models.split(","):
            plain = ms_per_epoch(dataset, model, args.epochs, None)
            every = ms_per_epoch(dataset, model, args.epochs, "0")
            spaced = ms_per_epoch(dataset, model, args.epochs, str(CHECKPOINT_SECONDS))
            print(f"{args.data:22} {model:6} {plain:>14.1f} {every:>12.1f} {spaced:>10.1f}  every epoch {every / plain:.2f}x, interval {spaced / plain:.2f}x", flush=True)
    finally:
        if saved is None:
            os.environ.pop(INTERVAL_VARIABLE, None)
        else:
            os.environ[INTERVAL_VARIABLE] = saved
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

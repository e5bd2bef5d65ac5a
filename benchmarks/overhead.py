"""Framework overhead: the same model, data, batch size, optimizer and number of steps trained by
(a) a bare PyTorch loop written here, (b) nncompare's trainer, (c) PyTorch Lightning when installed.

    python benchmarks/overhead.py [--epochs 10] [--repeats 3] [--threads 1]
    python benchmarks/overhead.py --smoke   # seconds: 1 epoch, 1 repeat, on the small seqdigits set

Models: MNIST-1D's CNN and GRU, each sized to 5k parameters. Every contender does the same thing per
epoch: one shuffled pass over the 3600 training series in batches of 128 with Adam (lr 1e-2, no
gradient clipping), then one pass over the 400 validation series. nncompare's time is its training
phase (the epochs' seconds in its history); its test evaluation and inference-speed measurement
after training are reported apart. Each contender runs --repeats times, alternating, the fastest
kept. Measured here before issue 7: Lightning 1.65x the bare loop on the CNN on 2 cores. Target:
nncompare <= 1.05x the bare loop. Without Lightning (`pip install lightning`, or nncompare's `bench`
extra) its columns say so and the rest runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time

import torch
import torch.nn.functional as F

from nncompare.data import load_dataset
from nncompare.errors import run_main
from nncompare.models import create_model, match_parameters
from nncompare.train import TrainConfig, fit
from nncompare.utils import set_seed

BATCH, LR = 128, 1e-2
HEADER = f"{'model':5} {'bare s':>7} {'nncompare s':>12} {'ratio':>6} {'(whole fit s)':>14} {'lightning s':>12} {'ratio':>6}"


def bare_loop(model, data, epochs: int) -> float:
    """The loop a user would write: shuffle, step, validate each epoch. Returns seconds."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, y, n = data.train.x, data.train.y, len(data.train.y)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, BATCH):
            idx = order[i : i + BATCH]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(data.val.x), data.val.y).item()
    return time.perf_counter() - start


def nncompare_loop(model, data, epochs: int) -> tuple[float, float]:
    """(training-phase seconds, seconds of the whole fit call)."""
    config = TrainConfig(lr=LR, batch_size=BATCH, max_epochs=epochs, patience=epochs, clip=0.0, seed=0)
    start = time.perf_counter()
    result = fit(model, data, config)
    total = time.perf_counter() - start
    return sum(row["seconds"] for row in result.history), total


def lightning_loop(model, data, epochs: int) -> float | None:
    try:
        import lightning as L
    except ImportError:
        return None
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # no banner lines between the table's rows
    warnings.filterwarnings("ignore", module="lightning")
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def validation_step(self, batch, _):
            xb, yb = batch
            self.log("val_loss", F.cross_entropy(self.net(xb), yb))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=LR)

    train = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(data.val.x, data.val.y), batch_size=len(data.val.y))
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(Module(model), train, val)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--params", type=int, default=5000)
    p.add_argument("--smoke", action="store_true", help="seconds, not a measurement: 1 epoch, 1 repeat, on the small seqdigits set instead of MNIST-1D")
    args = p.parse_args()
    data_name = "mnist1d"
    if args.smoke:
        data_name, args.epochs, args.repeats = "seqdigits", 1, 1
    torch.set_num_threads(args.threads)
    data = load_dataset(data_name)
    steps = args.epochs * math.ceil(len(data.train.y) / BATCH)
    contenders = ("bare", "nn", "light")
    if importlib.util.find_spec("lightning") is None:
        contenders = ("bare", "nn")
        print("PyTorch Lightning is not installed: its columns are skipped (pip install lightning, or nncompare's bench extra, to time it)")
    print(f"{data_name}, {args.epochs} epochs = {steps} Adam steps of {BATCH} + a validation pass per epoch; {args.threads} thread(s); fastest of {args.repeats}")
    print(HEADER)
    for name in ("cnn", "gru"):
        args_m = match_parameters(name, data.meta, args.params)
        best = {"bare": math.inf, "nn": math.inf, "fit": math.inf, "light": math.inf if "light" in contenders else math.nan}
        for _ in range(args.repeats):
            for who in contenders:
                set_seed(0)
                model = create_model(name, data.meta, **args_m)
                if who == "bare":
                    best["bare"] = min(best["bare"], bare_loop(model, data, args.epochs))
                elif who == "nn":
                    phase, whole = nncompare_loop(model, data, args.epochs)
                    best["nn"], best["fit"] = min(best["nn"], phase), min(best["fit"], whole)
                else:
                    t = lightning_loop(model, data, args.epochs)
                    best["light"] = min(best["light"], t) if t is not None else math.nan
        light = "not installed" if math.isnan(best["light"]) else f"{best['light']:.2f}"
        light_ratio = "" if math.isnan(best["light"]) else f"{best['light'] / best['bare']:.2f}"
        print(f"{name:5} {best['bare']:7.2f} {best['nn']:12.2f} {best['nn'] / best['bare']:6.2f} {best['fit']:14.2f} {light:>12} {light_ratio:>6}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

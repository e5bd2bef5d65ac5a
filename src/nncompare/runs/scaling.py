"""How cost grows with sequence length: training and inference time per example of each architecture
at a matched parameter count, with the fitted growth exponent (time ∝ length^k).

A recurrent model runs a sequential loop over the steps, so its time grows about linearly with the
length and cannot use more cores for a longer sequence; a convolution processes every position at
once, so on parallel hardware it grows more slowly until the machine is busy. The MLP's input layer
grows with the length too (one weight per position).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from ..models import count_parameters, create_model, match_parameters
from ..utils import set_seed

DEFAULT_LENGTHS = (32, 128, 512, 2048)
DEFAULT_PARAMS = 20_000
BATCH = 32  # examples per timed step
MIN_SECONDS = 0.5  # each timing repeats until this much time has passed (after a warm-up step)


@dataclass
class ScalingPoint:
    model: str
    length: int
    params: int
    train_us: float  # microseconds per example for one training step (forward, backward, Adam)
    infer_us: float  # microseconds per example in eval mode, no gradients


def _meta(length: int, channels: int = 1, n_classes: int = 10):
    from ..data.base import DatasetMeta

    return DatasetMeta(name=f"synthetic series of length {length}", kind="series", task="classify", input_shape=(length, channels), n_classes=n_classes)


def _repeat(fn, min_seconds: float) -> float:
    """Seconds per call of `fn`: the fastest of repeated calls over at least `min_seconds` (and at
    least 3 calls), after one warm-up call. The minimum is what the machine can do; slower calls were
    slowed by something else running (the advice of Python's timeit)."""
    fn()
    best, calls, start = float("inf"), 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        calls += 1
    return best


def time_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, min_seconds: float = MIN_SECONDS) -> tuple[float, float]:
    """(training seconds per step, inference seconds per batch) of `model` on the batch (x, y)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    train = _repeat(train_step, min_seconds)
    model.eval()

    def infer():
        with torch.no_grad():
            model(x)

    return train, _repeat(infer, min_seconds)


def growth_exponent(lengths, times) -> float:
    """The slope k of log(time) against log(length): time ∝ length^k (least squares)."""
    lx, ly = np.log(np.asarray(lengths, float)), np.log(np.asarray(times, float))
    return float(np.polyfit(lx, ly, 1)[0])


# every step read: the rules that shorten a long series for a comparison (the recurrent models'
# segments, the convolutional models' averaging over 500 steps) are left out, so the exponent is the
# architecture's own
EVERY_STEP = {"cnn": {"downsample": 1}, "tcn": {"downsample": 1}, **{cell: {"segment": 1} for cell in ("rnn", "lstm", "gru")}}


def scaling_model(name: str, length: int, params: int) -> torch.nn.Module:
    """Model `name` on series of `length` steps, reading every step, sized to about `params`."""
    meta = _meta(length)
    args = match_parameters(name, meta, params, **EVERY_STEP.get(name, {}))
    set_seed(0)
    return create_model(name, meta, **args)


def measure_scaling(models=None, lengths=DEFAULT_LENGTHS, params: int = DEFAULT_PARAMS, batch: int = BATCH, min_seconds: float = MIN_SECONDS, progress=None) -> list[ScalingPoint]:
    """Time every model at every length, each sized to about `params` parameters for that length."""
    from ..models import parse_models

    models = parse_models(models)
    lengths = sorted({int(n) for n in lengths})
    if len(lengths) < 2 or lengths[0] < 2:
        raise UserError(f"`lengths` needs at least two sequence lengths of 2 or more, such as 32, 128 and 512; got {','.join(map(str, lengths))}")
    say = progress or (lambda text: None)
    points = []
    for m in models:
        for n in lengths:
            model = scaling_model(m, n, params)
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(batch, n, 1, generator=gen)
            y = torch.randint(0, 10, (batch,), generator=gen)
            train, infer = time_model(model, x, y, min_seconds)
            points.append(ScalingPoint(m, n, count_parameters(model), 1e6 * train / batch, 1e6 * infer / batch))
            say(f"{m} at length {n}: {points[-1].train_us:,.0f} µs per example per training step")
    return points


def scaling_table(points: list[ScalingPoint]) -> tuple[list[int], list[dict]]:
    """(lengths, one row per model: times per length and the fitted exponents)."""
    lengths = sorted({p.length for p in points})
    rows = []
    for m in dict.fromkeys(p.model for p in points):
        mine = sorted((p for p in points if p.model == m), key=lambda p: p.length)
        rows.append(
            {
                "model": m,
                "params": [p.params for p in mine],
                "train_us": [p.train_us for p in mine],
                "infer_us": [p.infer_us for p in mine],
                "train_exponent": growth_exponent([p.length for p in mine], [p.train_us for p in mine]),
                "infer_exponent": growth_exponent([p.length for p in mine], [p.infer_us for p in mine]),
            }
        )
    return lengths, rows


def scaling_plot(points: list[ScalingPoint]) -> bytes:
    """Training and inference time per example against length, log-log, one line per model (PNG)."""
    from ..report.plots import _figure, _png, color

    lengths, rows = scaling_table(points)
    fig, axes = _figure(10, 3.8, ncols=2)
    for ax, key, title in ((axes[0, 0], "train_us", "training step"), (axes[0, 1], "infer_us", "inference")):
        for r in rows:
            ax.plot(lengths, r[key], marker="o", color=color(r["model"]), label=f"{r['model']} (∝ L^{r[key.replace('_us', '_exponent')]:.2f})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("µs per example")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=7)
    return _png(fig)


def check_lengths(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) < 2 or any(v < 2 or v > 1_000_000 for v in values):
        raise UserError(f"`lengths` takes two or more comma-separated sequence lengths between 2 and 1000000, e.g. 32,128,512; got '{text}'")
    return values

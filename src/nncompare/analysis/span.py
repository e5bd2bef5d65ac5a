"""How far back a model really looks: the effective span from input gradients, beside the theoretical
receptive field of convolutional models.

The profile is the mean absolute gradient of the output with respect to each input position
(series and text: time steps, summed over channels; images: pixels, summed over channels), normalised
to sum to 1. Luo et al. (2016) found the effective receptive field of CNNs much smaller than the
theoretical one; both are reported.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@contextmanager
def _one_hot_inputs(model: nn.Module, meta):
    """Text models read character ids, which have no gradient. For the span they are given one-hot
    float vectors instead: a model that one-hots its ids internally reads such vectors as a series
    with one channel per character (same numbers), so it is switched to that view for the duration."""
    if meta.kind != "text":
        yield
        return
    kinds = [(m, m.kind) for m in model.modules() if getattr(m, "kind", None) == "text"]
    for m, _ in kinds:
        m.kind = "series"
    try:
        yield
    finally:
        for m, kind in kinds:
            m.kind = kind


def gradient_profile(model: nn.Module, x: torch.Tensor, meta, lengths: torch.Tensor | None = None, batch_size: int = 128) -> np.ndarray:
    """Mean |d output / d input| per input position, normalised to sum 1.

    - one label per input: the output is the log-probability of the predicted class (regression: the
      sum of the outputs); profile over positions (series (L,), images (H, W), tables (F,) encoded features).
    - one label per position (text, copy task): the output at the last position T-1, whose inputs are
      positions 0..T-1; the profile is returned by lag (index 0 = the position itself, k = k steps back).
    """
    was_training = model.training
    model.eval()
    total = None
    with _one_hot_inputs(model, meta):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            lb = None if lengths is None else lengths[start : start + batch_size]
            if meta.kind == "text":
                xb = F.one_hot(xb.long(), meta.n_classes).float()  # (B, T, V)
            xb = xb.detach().clone().requires_grad_(True)
            out = model(xb) if lb is None else model(xb, lb)
            if meta.task == "per_step":
                out = out[:, -1]  # (B, K): the prediction for the last position
            if meta.task == "regress":
                target = out.sum()
            else:
                logp = torch.log_softmax(out, -1)
                target = logp.gather(-1, logp.argmax(-1, keepdim=True)).sum()
            (grad,) = torch.autograd.grad(target, xb)
            g = grad.abs()
            if meta.kind != "table":  # a table's (B, F) encoded features are its positions already
                g = g.sum(1) if meta.kind == "image" else g.sum(-1)  # images (B, H, W); sequences (B, T)
            total = g.sum(0) if total is None else total + g.sum(0)
    model.train(was_training)
    profile = total.numpy().astype(float)
    if meta.task == "per_step":
        profile = profile[::-1].copy()  # by lag: index k = k steps before the last position
    s = profile.sum()
    return profile / s if s > 0 else profile


def span_of(profile: np.ndarray, mass: float = 0.9, floor: float = 0.01, per_step: bool = False) -> dict:
    """Summaries of a gradient profile.

    - `span`: the fewest positions that together hold `mass` (90%) of the gradient;
    - `farthest`: for sequences, how many steps back from the output the farthest position whose
      gradient is at least `floor` (1%) of the peak lies (1 = only the last position); None for images.
    For a one-label sequence model the output comes after the last position, so position L-1 is 1 step
    back; per-position profiles (by lag) count the position itself as 1.
    """
    flat = np.asarray(profile, dtype=float).ravel()
    if flat.sum() <= 0:
        return {"span": 0, "farthest": None, "positions": int(flat.size)}
    ordered = np.sort(flat)[::-1]
    span = int(np.searchsorted(np.cumsum(ordered), mass * flat.sum() - 1e-12) + 1)
    farthest = None
    if np.ndim(profile) == 1:
        above = np.nonzero(flat >= floor * flat.max())[0]
        farthest = int(above.max() + 1) if per_step else int(len(flat) - above.min())
    return {"span": min(span, flat.size), "farthest": farthest, "positions": int(flat.size)}


def theoretical_receptive_field(model: nn.Module) -> int | None:
    """Positions (per axis) one output position of a convolutional stack can see, from kernels and
    dilations (stride 1 throughout): 1 + sum over convolutions of (kernel - 1) * dilation, following the
    forward order of the layers. None for models without convolutions (the MLP sees the whole input,
    recurrent models every earlier step). A model that knows its own (`receptive_field()`: the CNN,
    whose side-by-side first layer spans its longest kernel and whose fixed filters are no Conv module;
    the TCN) says it."""
    if callable(getattr(model, "receptive_field", None)):
        return model.receptive_field()
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not convs:
        return None
    field = 1
    for c in convs:
        if c.stride[0] != 1:
            raise ValueError("strided convolutions are not covered by this formula")
        field += (c.kernel_size[0] - 1) * c.dilation[0]
    return field

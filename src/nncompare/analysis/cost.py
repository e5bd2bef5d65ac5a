"""What a model costs: parameters and FLOPs per example (torch's own flop counter)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn


@contextmanager
def _equations_path(model: nn.Module):
    """Torch's flop counter counts matrix multiplies and convolutions but not the fused RNN kernels, so
    recurrent layers are counted on their equation-written path (the same multiplies, step by step)."""
    switched = [(m, m.impl) for m in model.modules() if getattr(m, "impl", None) in ("fused", "auto")]
    for m, _ in switched:
        m.impl = "equations"
    try:
        yield
    finally:
        for m, impl in switched:
            m.impl = impl


@torch.no_grad()
def flops_per_example(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> int:
    """Forward FLOPs for one example (the first of `x`), counted by torch.utils.flop_counter.

    Counts multiply-adds as 2 FLOPs in matrix multiplies and convolutions; element-wise work
    (activations, gates' sigmoids) is not counted, as in the usual FLOP tables."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    xb = x[:1]
    counter = FlopCounterMode(display=False)
    try:
        with _equations_path(model), counter:
            model(xb) if lengths is None else model(xb, lengths[:1])
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def training_step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one training step's forward, cross-entropy and backward on the batch (x, y) (the
    optimizer's element-wise update is not counted), counted as `flops_per_example` counts them.

    A layer's backward multiplies cost its forward's twice over (the gradient of the weights and of
    the layer's input) except for the first layer, whose input needs no gradient."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train()
    counter = FlopCounterMode(display=False)
    try:
        with _equations_path(model), counter:
            torch.nn.functional.cross_entropy(model(x), y).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return int(counter.get_total_flops())

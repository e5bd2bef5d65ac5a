"""Shared pieces: activations by name, layout changes at a model's edge, checked hyperparameters."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UserError(f"unknown activation '{name}'; valid choices: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def check_positive_int(name: str, value, model: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"model '{model}': {name} must be a positive whole number, got {value!r}")
    return value


def sequence_view(x: torch.Tensor, kind: str, n_symbols: int = 0) -> torch.Tensor:
    """The input as a sequence (B, T, F): series stay (B, L, C); images are read row by row, each
    row's pixels of every channel forming one step: (B, C, H, W) -> (B, H, C*W); text, character ids
    (B, T), becomes one-hot vectors (B, T, n_symbols), as char-rnn feeds its networks."""
    if kind == "image":
        b, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, H, C*W)
    if kind == "text":
        return F.one_hot(x.long(), n_symbols).float()  # (B, T) -> (B, T, V)
    return x  # (B, L, C)


def symbols(meta) -> int:
    """Size of the one-hot input of a text data set (its vocabulary); 0 for other kinds."""
    return meta.n_classes if meta.kind == "text" else 0


def sequence_shape(meta) -> tuple[int, int]:
    """(steps, features per step) of `sequence_view` for a data set."""
    if meta.kind == "image":
        c, h, w = meta.input_shape
        return h, c * w
    if meta.kind == "text":
        return meta.input_shape[0], meta.n_classes
    length, channels = meta.input_shape
    return length, channels


def last_step(h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The features of each sequence's last real step: (B, T, F) -> (B, F).

    Sequences are padded at the end, so for causal models (RNNs, TCN) the state at step length-1 is
    exactly what the unpadded sequence ends in."""
    if lengths is None:
        return h[:, -1]
    index = (lengths.to(h.device) - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, h.shape[2])  # (B, 1, F)
    return h.gather(1, index).squeeze(1)


READOUTS = ("last", "mean")


def read_out(h: torch.Tensor, lengths: torch.Tensor | None, readout: str) -> torch.Tensor:
    """What a causal model (RNN, TCN) classifies a whole sequence by: (B, T, F) -> (B, F). "last": the
    features of the last real step (`last_step`), which have seen the whole sequence through the
    recurrence or the receptive field; "mean": the mean over the real steps, as the CNN's global
    average pool reads its features (being causal, no real step has seen the padding)."""
    if readout == "last":
        return last_step(h, lengths)
    if lengths is None:
        return h.mean(1)
    mask = step_mask(lengths.to(h.device), h.shape[1])[:, :, None]  # (B, T, 1)
    return (h * mask).sum(1) / mask.sum(1).clamp(min=1)


def step_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) float mask: 1 for real steps, 0 for padding."""
    return (torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]).float()


# A whole series longer than this is averaged over windows of f = ceil(L / MAX_CONVOLVED_STEPS) steps
# before the CNN's and the TCN's first layer (`downsample`, `default_downsample`). A convolution costs
# time in proportion to the length, and the CNN's kernels stop growing with the series at 40 steps
# (cnn.default_kernels): on ACSF1's 1460 steps a default CNN run took 940 s for 89.0 %, averaged by 3
# (487 steps) 171 s for 91.0 % (docs/benchmarks.md, "Long series averaged down"). Every bundled set
# the defaults were measured on has at most 427 steps and is read as it is.
MAX_CONVOLVED_STEPS = 500


def default_downsample(meta) -> int:
    """Steps averaged into one before a convolutional model's first layer: ceil(L / MAX_CONVOLVED_STEPS)
    on a whole series (one label per series) of L steps; 1 (as it is) for shorter series, images, text
    and one label per position, whose outputs are per step."""
    if meta.kind != "series" or meta.task == "per_step":
        return 1
    return max(1, -(-meta.input_shape[0] // MAX_CONVOLVED_STEPS))


def resolve_downsample(meta, downsample, model: str):
    """(factor, the meta the layers are sized on): `downsample` "auto" by `default_downsample`, or a
    positive whole number (1: off), which applies to a whole series only; the meta's length is the
    averaged one, so kernels, fixed filters and levels are sized to what the first layer reads."""
    from dataclasses import replace

    if isinstance(downsample, str) and downsample == "auto":
        downsample = default_downsample(meta)
    check_positive_int("downsample", downsample, model)
    if downsample > 1 and (meta.kind != "series" or meta.task == "per_step"):
        raise UserError(f"model '{model}': downsample applies to a whole series (one label per series); these inputs are read step by step, so use downsample=1")
    if downsample == 1:
        return 1, meta
    length, channels = meta.input_shape
    return downsample, replace(meta, input_shape=(-(-length // downsample), channels))


def average_steps(h: torch.Tensor, lengths: torch.Tensor | None, factor: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, C, L) -> (B, C, ceil(L / factor)): each window of `factor` steps averaged (the last one over
    the steps it has). A padded series averages its real steps only, so it keeps ceil(length / factor)
    steps, the same as the series unpadded."""
    if factor == 1:
        return h, lengths
    if lengths is None:
        return F.avg_pool1d(h, factor, factor, ceil_mode=True), None
    real = step_mask(lengths.to(h.device), h.shape[2])[:, None, :].to(h.dtype)  # (B, 1, L)
    sums = F.avg_pool1d(h * real, factor, factor, ceil_mode=True)
    shares = F.avg_pool1d(real, factor, factor, ceil_mode=True)  # of each window, the share that is real
    return sums / shares.clamp(min=1 / factor), averaged_lengths(lengths, factor)


def averaged_lengths(lengths: torch.Tensor | None, factor: int) -> torch.Tensor | None:
    """Real steps of padded series after `average_steps`: ceil(length / factor)."""
    return lengths if lengths is None or factor == 1 else torch.div(lengths + factor - 1, factor, rounding_mode="floor")

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

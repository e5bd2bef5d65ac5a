"""Feed-forward network: the whole input flattened, then matrix multiplies. No weight ties.

With no weights shared across positions an MLP has many more free parameters per input than a CNN or
RNN and overfits small data sets quickly; dropout on the hidden units (Srivastava et al. 2014, p = 0.5
for hidden layers) is part of the standard MLP recipe, so it is on by default here: on MNIST-1D it lifts
test accuracy from about 60-65% to about 70% (benchmarks/mnist1d.py). `dropout=0` gives the plain MLP.
Width (hidden units) by default: 512, or 128 for one label per position (see PER_STEP_WIDTH).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .registry import register_model
from .layers import check_positive_int, make_activation, sequence_shape, symbols


WIDTH = 512  # hidden units for one output per input
# one output per position runs the network at every position (128 per text window), so the hidden
# layers cost T times more; 128 units cut a training step of 128 text windows from 1.6 s to 0.4 s
# (measured 2026-11-28, 1 thread), still the slowest model on text (benchmarks/text.py)
PER_STEP_WIDTH = 128


class FeatureBatchNorm(nn.BatchNorm1d):
    """Batch norm over the last dimension of (..., features): (B, F) as usual, and (B, T, F) for the
    per-position MLP, whose statistics then span every position of the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class MLP(nn.Module):
    """Input (B, *input_shape) -> flatten (B, D) -> `depth` x [Linear, (batch norm), activation, dropout] -> Linear (B, n_classes).
    With `residual`, every block after the first adds its input to its output."""

    def __init__(self, meta, width: int | None = None, depth: int = 2, activation: str = "relu", dropout: float = 0.5, window: int = 32, norm: str = "none", residual: bool = False):
        super().__init__()
        if width is None:
            width = PER_STEP_WIDTH if meta.task == "per_step" else WIDTH
        check_positive_int("width", width, "mlp")
        check_positive_int("depth", depth, "mlp")
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise UserError(f"model 'mlp': dropout must be in [0, 1), got {dropout!r}")
        self.per_step = meta.task == "per_step"
        self.kind, self.n_symbols = meta.kind, symbols(meta)
        if self.per_step:
            # one label per position: a neural n-gram reads the `window` positions up to and including t
            self.window = check_positive_int("window", window, "mlp")
            in_features = self.window * sequence_shape(meta)[1]
        else:
            in_features = math.prod(meta.input_shape)
        if norm not in ("none", "batch"):
            raise UserError(f"model 'mlp': norm must be one of none, batch, got {norm!r}")
        if not isinstance(residual, bool):
            raise UserError(f"model 'mlp': residual must be true or false, got {residual!r}")
        layers: list[nn.Module] = []
        self.block_starts = []  # where each [Linear, (norm), activation, (dropout)] block begins in `body`
        for _ in range(depth):
            self.block_starts.append(len(layers))
            layers.append(nn.Linear(in_features, width))
            if norm == "batch":
                layers.append(FeatureBatchNorm(width))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_features = width
        self.body = nn.Sequential(*layers)
        # residual: blocks after the first (width in = width out) add their input, h <- h + block(h)
        self.residual = residual
        self.head = nn.Linear(in_features, meta.output_size)

    def run_body(self, h: torch.Tensor, first_done: bool = False) -> torch.Tensor:
        """The hidden blocks over (..., features); `first_done`: the first Linear was already applied."""
        ends = self.block_starts[1:] + [len(self.body)]
        for k, (start, end) in enumerate(zip(self.block_starts, ends)):
            out = self.body[start + (1 if first_done and k == 0 else 0) : end](h)
            h = out + h if self.residual and k > 0 else out
        return h

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_step and self.kind == "text":
            return self.head(self.run_body(self._first_layer_from_ids(x), first_done=True))
        if self.per_step:
            b, t, c = x.shape
            padded = F.pad(x, (0, 0, self.window - 1, 0))  # (B, window-1+T, C): zeros before the start
            windows = padded.unfold(1, self.window, 1)  # (B, T, C, window): positions t-window+1 .. t
            return self.head(self.run_body(windows.reshape(b, t, c * self.window)))  # (B, T, n_classes)
        # the MLP needs a fixed input size: padded series are read with their zero padding
        h = self.run_body(x.flatten(1))  # (B, width)
        return self.head(h)  # (B, outputs)

    def context_length(self) -> int:
        """Positions an output at position t depends on (one label per position): the window t-window+1 .. t."""
        if not self.per_step:
            raise ValueError("context_length is defined for one label per position")
        return self.window

    def _first_layer_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """The first Linear applied to the one-hot windows of character ids (B, T), without building them.

        Its weight (width, V * window) multiplies a vector that is one-hot per window position, so the
        product is the sum, over the window, of one weight column per position: a lookup instead of
        a (V * window)-wide matrix multiply; the same numbers up to rounding, V times less work in this layer.
        """
        first: nn.Linear = self.body[0]
        width, window, v = first.out_features, self.window, self.n_symbols
        # the flattened one-hot window is laid out (V, window): column c * window + k is symbol c at offset k
        table = first.weight.view(width, v, window).permute(2, 1, 0).reshape(window * v, width)  # row k * V + c
        ids = ids.long()
        b, t = ids.shape
        padded = F.pad(ids, (window - 1, 0), value=-1)  # -1: before the start of the text, contributes nothing
        windows = padded.unfold(1, window, 1)  # (B, T, window): offsets 0..window-1 end at position t
        rows = windows.clamp(min=0) + torch.arange(window, device=ids.device) * v  # (B, T, window)
        present = (windows >= 0).to(table.dtype)
        h = F.embedding_bag(rows.reshape(b * t, window), table, mode="sum", per_sample_weights=present.reshape(b * t, window))
        h = h.view(b, t, width) + first.bias
        return h  # (B, T, width)


@register_model("mlp", family="feed-forward", summary="multilayer perceptron on the flattened input (width None: 512 units, 128 when it labels every position), dropout 0.5 (no weight ties; sees everything at once)", default_lr=3e-3, width="width")
def build_mlp(meta, *, width: int | None = None, depth: int = 2, activation: str = "relu", dropout: float = 0.5, window: int = 32, norm: str = "none", residual: bool = False) -> nn.Module:
    return MLP(meta, width=width, depth=depth, activation=activation, dropout=dropout, window=window, norm=norm, residual=residual)

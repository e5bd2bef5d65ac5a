"""Temporal convolutional network (Bai, Kolter & Koltun 2018): dilated causal 1-D convolutions.

Each residual block holds two causal convolutions with the same `dilation_size`; dilations double per
level (1, 2, 4, ...), so the receptive field grows exponentially with depth:
    receptive field = 1 + 2 (kernel_size - 1) (2^levels - 1).
Images are read as sequences of rows, like the recurrent models read them.

A whole series longer than 500 steps is first averaged over windows of ceil(L / 500) steps, as for the
CNN (`downsample`, layers.default_downsample), and the levels cover the averaged series.

A whole sequence is classified (or regressed) by the mean of the last block's per-step features over
the real steps (readout "mean", the default), as the CNN's global average pool and tsai's TCN read
theirs; readout "last" takes the last step's features, as Bai et al. do for sequential MNIST. On the
eight bundled UCR/UEA sets the mean readout raised the TCN from 76.8 to 83.0 % (mean test accuracy,
2 seeds) and on MNIST-1D from 89.4 to 96.7 % (3 seeds): docs/benchmarks.md, "The TCN's readout".
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model
from .cnn import MaskedBatchNorm1d
from .layers import READOUTS, average_steps, averaged_lengths, check_positive_int, make_activation, read_out, resolve_downsample, sequence_shape, sequence_view, step_mask, symbols


class CausalConv1d(nn.Conv1d):
    """Conv1d that pads only on the left, so output t depends on inputs <= t."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation_size: int):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation_size)
        self.left_padding = (kernel_size - 1) * dilation_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C_out, T)
        return super().forward(F.pad(x, (self.left_padding, 0)))


class TemporalBlock(nn.Module):
    """x -> causal conv -> [batch norm] -> act -> causal conv -> [batch norm] -> act, plus x (1x1 conv when
    widths differ), -> act. Batch norm's training statistics span every real position of the batch (as
    in the CNN: with a mask, the padding after a varying-length series' end is left out); in eval mode it
    uses running statistics, so an output still sees no later input."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation_size: int, activation: str, norm: str = "none"):
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, out_channels, kernel_size, dilation_size)
        self.conv2 = CausalConv1d(out_channels, out_channels, kernel_size, dilation_size)
        self.norm1, self.norm2 = ((MaskedBatchNorm1d(out_channels), MaskedBatchNorm1d(out_channels)) if norm == "batch" else (None, None))
        self.act1, self.act2, self.act_out = (make_activation(activation) for _ in range(3))
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # (B, C_in, T), mask (B, 1, T) -> (B, C_out, T)
        h = self.conv1(x)
        h = self.act1(h if self.norm1 is None else self.norm1(h, mask))
        h = self.conv2(h)
        h = self.act2(h if self.norm2 is None else self.norm2(h, mask))
        return self.act_out(h + self.downsample(x))


def levels_for(length: int, kernel_size: int) -> int:
    """Fewest levels whose receptive field covers `length` steps."""
    levels = 1
    while 1 + 2 * (kernel_size - 1) * (2**levels - 1) < length:
        levels += 1
    return levels


def default_norm(meta) -> str:
    """`norm` None: batch norm for a whole series read as one (classification, regression), as the
    series CNN uses it (FCN, Wang et al. 2017); none for images read row by row, text, and one output
    per step (there batch statistics taken in training would mix later steps into earlier ones' features)."""
    return "batch" if meta.kind == "series" and meta.task != "per_step" else "none"


class TCN(nn.Module):
    """Sequence view (B, T, F) -> (B, F, T) -> residual temporal blocks -> mean over the real steps (or
    the last real step) (B, C) -> Linear."""

    def __init__(self, meta, num_channels: int = 32, levels: int | None = None, kernel_size: int = 3, activation: str = "relu", norm: str | None = None, readout: str = "mean", downsample: int | str = "auto"):
        super().__init__()
        from ..errors import UserError

        # a long whole series is averaged down first, as for the CNN (layers.default_downsample); the
        # levels cover the averaged series
        self.downsample, sized = resolve_downsample(meta, downsample, "tcn")
        self.stored_args = {"downsample": self.downsample}  # what a stored run records, whatever rule chose it

        if norm is None:
            norm = default_norm(meta)
        if norm not in ("none", "batch"):
            raise UserError(f"model 'tcn': norm must be one of none, batch, got {norm!r}")
        if readout not in READOUTS:
            raise UserError(f"model 'tcn': readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        self.readout = readout
        check_positive_int("num_channels", num_channels, "tcn")
        check_positive_int("kernel_size", kernel_size, "tcn")
        if kernel_size < 2:
            raise UserError(f"model 'tcn': kernel_size must be at least 2 for dilations to widen the view, got {kernel_size}")
        steps, features = sequence_shape(sized)
        self.levels = check_positive_int("levels", levels, "tcn") if levels is not None else levels_for(steps, kernel_size)
        self.kind, self.n_symbols, self.kernel_size = meta.kind, symbols(meta), kernel_size
        blocks, in_channels = [], features
        for i in range(self.levels):
            blocks.append(TemporalBlock(in_channels, num_channels, kernel_size, dilation_size=2**i, activation=activation, norm=norm))
            in_channels = num_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(num_channels, meta.output_size)
        self.per_step = meta.task == "per_step"

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Per-step features (B, T, C); step t has seen only steps <= t. `lengths` (padded series) keep
        the padding out of batch norm's training statistics."""
        h = sequence_view(x, self.kind, self.n_symbols).transpose(1, 2)  # (B, F, T)
        h, lengths = average_steps(h, lengths, self.downsample)  # a long series averaged down: (B, F, T / f)
        mask = None if lengths is None else step_mask(lengths.to(x.device), h.shape[2])[:, None, :]  # (B, 1, T)
        for block in self.blocks:
            h = block(h, mask)
        return h.transpose(1, 2)  # (B, T, C)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_step:
            return self.head(self.features(x, lengths))  # (B, T, n_classes), causal
        averaged = averaged_lengths(lengths, self.downsample)  # the features are of the averaged steps
        return self.head(read_out(self.features(x, lengths), averaged, self.readout))  # (B, outputs)

    def receptive_field(self) -> int:
        """In input steps: each position the blocks read averages `downsample` of them."""
        return self.downsample * (1 + 2 * (self.kernel_size - 1) * (2**self.levels - 1))

    def context_length(self) -> int:
        """Positions an output at position t depends on (one label per position, causal): t-R+1 .. t, R the receptive field."""
        return self.receptive_field()


@register_model("tcn", family="convolutional", summary="temporal convolutional network: dilated causal 1-D convolutions with residual blocks (images read row by row)", default_lr=1e-2, width="num_channels")
def build_tcn(meta, *, num_channels: int = 32, levels: int | None = None, kernel_size: int = 3, activation: str = "relu", norm: str | None = None, readout: str = "mean", downsample: int | str = "auto") -> nn.Module:
    return TCN(meta, num_channels=num_channels, levels=levels, kernel_size=kernel_size, activation=activation, norm=norm, readout=readout, downsample=downsample)

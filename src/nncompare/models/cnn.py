"""Convolutional network: shared kernels slide over time (series, Conv1d) or space (images, Conv2d).

Weight ties across positions make it translation-equivariant; global average pooling at the end makes
the class score translation-invariant, which is what MNIST-1D's shifted templates reward.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from . import register_model
from .layers import check_positive_int, make_activation, sequence_shape, sequence_view, step_mask, symbols


NORMS = ("none", "batch")


class CNN(nn.Module):
    """`depth` x [Conv (same padding), batch norm if `norm="batch"`, activation] (with `residual`, blocks 2.. add
    their input) -> global average
    over positions -> Linear.

    Series (B, L, C) are transposed to (B, C, L) for Conv1d; images (B, C, H, W) go to Conv2d as they are.
    For padded series (`lengths`), padding is masked after every layer and left out of the average.
    Batch norm's training statistics are taken over every position of the batch, padding and (for a
    per-step task) later positions included; in eval mode it uses its running statistics, so an
    output still depends on no later input and no padding.
    """

    def __init__(self, meta, channels: int = 32, depth: int = 3, kernel_size: int | None = None, activation: str = "relu", norm: str = "none", residual: bool = False):
        super().__init__()
        if not isinstance(residual, bool):
            raise UserError(f"model 'cnn': residual must be true or false, got {residual!r}")
        if norm not in NORMS:
            raise UserError(f"model 'cnn': norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if kernel_size is None:  # 5 steps along a series; 3x3 on images, the usual choice for small images
            kernel_size = 3 if meta.kind == "image" else 5
        for name, v in (("channels", channels), ("depth", depth), ("kernel_size", kernel_size)):
            check_positive_int(name, v, "cnn")
        self.is_image = meta.kind == "image"
        self.per_step = meta.task == "per_step"
        # one label per position must not see later positions: pad on the left only (causal)
        self.left_padding = kernel_size - 1 if self.per_step else 0
        padding = 0 if self.per_step else kernel_size // 2
        conv = nn.Conv2d if self.is_image else nn.Conv1d
        self.kind, self.n_symbols = meta.kind, symbols(meta)
        in_channels = meta.input_shape[0] if self.is_image else sequence_shape(meta)[1]
        layers: list[nn.Module] = []
        batch_norm = nn.BatchNorm2d if self.is_image else nn.BatchNorm1d
        for _ in range(depth):
            block = [conv(in_channels, channels, kernel_size, padding=padding)]
            if norm == "batch":  # conv -> batch norm -> activation, as in FCN (Wang et al. 2017)
                block.append(batch_norm(channels))
            layers.append(nn.Sequential(*block, make_activation(activation)))
            in_channels = channels
        self.features = nn.ModuleList(layers)
        self.head = nn.Linear(channels, meta.output_size)
        self.kernel_size, self.depth = kernel_size, depth
        # residual: every block after the first (equal widths in and out) adds its input to its output,
        # h <- h + block(h), as in ResNet (He et al. 2016); the first block changes the width
        self.residual = residual

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.is_image:
            h = x  # (B, C, H, W)
            for k, layer in enumerate(self.features):
                h = layer(h) + h if self.residual and k > 0 else layer(h)  # (B, channels, H, W)
            return self.head(h.flatten(2).mean(-1))  # global average over positions -> (B, n_classes)
        h = sequence_view(x, self.kind, self.n_symbols).transpose(1, 2)  # (B, L, C) -> (B, C, L)
        mask = None if lengths is None else step_mask(lengths.to(x.device), h.shape[2])[:, None, :]  # (B, 1, L)
        for k, layer in enumerate(self.features):
            out = layer(F.pad(h, (self.left_padding, 0)) if self.left_padding else h)  # (B, channels, L)
            h = out + h if self.residual and k > 0 else out
            if mask is not None:
                # zero the padded steps after every layer, so each layer sees zeros beyond the real end,
                # exactly the zero padding an unpadded (shorter) series gets at its boundary
                h = h * mask
        if self.per_step:
            return self.head(h.transpose(1, 2))  # a label per position: (B, L, n_classes)
        if mask is None:
            return self.head(h.mean(-1))
        return self.head(h.sum(-1) / mask.sum(-1).clamp(min=1))  # average over real steps only

    def receptive_field(self) -> int:
        """Theoretical receptive field (positions per axis) of one output position: 1 + depth * (k - 1)."""
        return 1 + self.depth * (self.kernel_size - 1)

    def context_length(self) -> int:
        """Positions an output at position t depends on (one label per position, causal): t-R+1 .. t, R the receptive field."""
        return self.receptive_field()


@register_model("cnn", family="convolutional", summary="convolutions with shared kernels (1-D for series, 2-D for images), global average pooling", default_lr=1e-2, width="channels")
def build_cnn(meta, *, channels: int = 32, depth: int = 3, kernel_size: int | None = None, activation: str = "relu", norm: str = "none", residual: bool = False) -> nn.Module:
    return CNN(meta, channels=channels, depth=depth, kernel_size=kernel_size, activation=activation, norm=norm, residual=residual)

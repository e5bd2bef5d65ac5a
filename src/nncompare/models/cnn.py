"""Convolutional network: shared kernels slide over time (series, Conv1d) or space (images, Conv2d).

Weight ties across positions make it translation-equivariant; global average pooling at the end makes
the class score translation-invariant, which is what MNIST-1D's shifted templates reward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .layers import (
    average_steps,
    check_positive_int,
    make_activation,
    resolve_downsample,
    sequence_shape,
    sequence_view,
    step_mask,
    symbols,
)
from .registry import register_model

NORMS = ("none", "batch")


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch norm whose training statistics come from the real steps only: for padded series (a mask
    given) the zeros after a series' end neither enter the batch mean and variance nor the running
    averages, so a batch of short series is normalised as if it had not been padded. Without a mask, or
    in eval mode, it is torch's BatchNorm1d (the same parameters and buffers)."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or not self.training:
            return super().forward(h)
        n = mask.sum() * 1.0  # real steps in the batch; h (B, C, L), mask (B, 1, L)
        mean = (h * mask).sum((0, 2)) / n  # (C,)
        var = (((h - mean[None, :, None]) ** 2) * mask).sum((0, 2)) / n  # biased, as batch norm normalises
        with torch.no_grad():  # running averages as torch keeps them: unbiased variance, momentum 0.1
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / (n - 1).clamp(min=1))
            self.num_batches_tracked += 1
        normed = (h - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return normed * self.weight[None, :, None] + self.bias[None, :, None]


class SideBySide(nn.Module):
    """Convolutions of several kernel sizes over the same input, side by side, their channels
    concatenated: a multi-scale layer, as in InceptionTime's modules (Ismail Fawaz et al. 2020). The
    `width` channels are split as evenly as can be between the `kernels`; each branch pads its own input
    to keep the length ("same", or causal: only earlier steps)."""

    def __init__(self, in_channels: int, width: int, kernels: list[int], causal: bool = False):
        super().__init__()
        widths = [width // len(kernels) + (i < width % len(kernels)) for i in range(len(kernels))]
        self.convs = nn.ModuleList(nn.Conv1d(in_channels, w, k) for w, k in zip(widths, kernels))
        self.pads = [(k - 1, 0) if causal else ((k - 1) // 2, k // 2) for k in kernels]
        self.kernels = list(kernels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(F.pad(h, pad)) for conv, pad in zip(self.convs, self.pads)], 1)


class FixedFilters(nn.Module):
    """Filters that are not learnt, applied to every input channel alone ("same" padding): the
    hand-crafted filters of Ismail-Fawaz et al. (2022), which detect a rise, a fall or a peak at a given
    scale. A rise filter of length l alternates -1, +1, so its output at t is the sum of the l/2
    step-to-step increases x[t+2j+1] - x[t+2j] inside the window: positive where the series climbs; a fall
    filter is its negative. A peak filter is a bump (an inverted parabola, 1 at its centre) minus its own
    mean, positive where the window's middle stands above its edges. Lengths: rises and falls of 2, 4,
    ..., 64 steps, peaks of 6, 12, ..., 96 steps, those no longer than the series. Their outputs join
    the first layer's (CNN `handcrafted`); the weights are a buffer, stored with the model, never trained."""

    def __init__(self, in_channels: int, length: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        filters = []
        for l in (2, 4, 8, 16, 32, 64):
            if l <= length:
                rise = torch.tensor([(-1.0) ** (i + 1) for i in range(l)])
                filters += [rise, -rise]
        for l in (6, 12, 24, 48, 96):
            if l <= length:
                u = torch.linspace(-1, 1, l)
                bump = 1 - u**2
                filters.append(bump - bump.mean())
        longest = max(len(f) for f in filters)
        bank = torch.zeros(len(filters), longest)
        for i, f in enumerate(filters):  # each filter centred in a row of the longest length
            start = (longest - len(f)) // 2
            bank[i, start : start + len(f)] = f
        # one copy of the bank per input channel: a grouped convolution, channel c -> its own filters
        self.register_buffer("weight", bank[:, None, :].repeat(in_channels, 1, 1))
        self.in_channels, self.longest, self.out_channels = in_channels, longest, len(filters) * in_channels

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C * filters, L)
        k = self.longest  # "same" padding; causal (one label per position): only earlier steps
        return F.conv1d(F.pad(h, (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2)), self.weight, groups=self.in_channels)


class WithFixed(nn.Module):
    """A first layer and the fixed filters over the same input, their channels concatenated."""

    def __init__(self, layer: nn.Module, fixed: FixedFilters):
        super().__init__()
        self.layer, self.fixed = layer, fixed

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.layer(h), self.fixed(h)], 1)


MIN_KERNEL = 5  # steps: the series CNN's shortest kernel (3x3 on images)
KERNEL_SHARE = 25  # the first kernel spans about 1/KERNEL_SHARE of a whole series ...
MAX_KERNEL = 40  # ... and at most 40 steps, InceptionTime's longest kernel (Ismail Fawaz et al. 2020)
LEGACY_AUTO = "auto-1%"  # the rule of runs stored on 2026-12-06, which record kernel_size "auto" (models/registry.py)


def default_kernels(meta, n_layers: int, share: int = KERNEL_SHARE, longest: int | None = MAX_KERNEL) -> list[int]:
    """Kernel sizes by the data's shape: 3x3 on images; along a series whose task is one label per
    position, 5 steps. On a whole series the first kernel spans about 4% of it (1/`share`), at least
    MIN_KERNEL and at most `longest` steps, and each next one half the one before, never below
    MIN_KERNEL: 5-5-5 up to 137 steps, 10-5-5 on 251, 17-8-5 on 427, 40-20-10 from 988 on (the CNN
    passes the length it reads: a series longer than 500 steps averaged down, layers.default_downsample,
    so 19-9-5 on 1460 steps averaged by 3). A fixed
    small kernel gives a series a receptive field of a few steps (13 at 5-5-5, 0.65% of 2000), while
    the networks that do well on the archive see far more (FCN's 8-5-3, ResNet's 40 steps,
    InceptionTime's kernels of 10 to 40; Ismail Fawaz et al. 2020 show accuracy growing with the
    receptive field on long series). Measured in docs/benchmarks.md ("Kernels sized to the series")."""
    if meta.kind == "image":
        return [3] * n_layers
    if meta.task == "per_step":
        return [MIN_KERNEL] * n_layers
    first = max(MIN_KERNEL, round(sequence_shape(meta)[0] / share))
    if longest is not None:
        first = min(first, longest)
    return [max(MIN_KERNEL, first // 2**i) for i in range(n_layers)]


def per_layer(name: str, value, depth: int) -> list[int]:
    """`value` as one positive whole number per layer: a number repeated `depth` times, or a list as given."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * depth
    if not values:
        raise UserError(f"model 'cnn': {name} must be a positive whole number or a list of them, got {value!r}")
    for v in values:
        check_positive_int(name, v, "cnn")
    return values


class CNN(nn.Module):
    """`depth` x [Conv (same padding), batch norm if `norm="batch"`, activation] (with `residual`, blocks 2.. add
    their input) -> global average
    over positions -> dropout if `dropout` > 0 -> Linear.

    `channels` and `kernel_size` are one number for every layer or a list with one per layer (then
    `depth` is the list's length): FCN (Wang et al. 2017) is channels=[128, 256, 128],
    kernel_size=[8, 5, 3], norm="batch". Padding keeps the length ("same"; an even kernel pads one
    more step on the right, as Keras, in which FCN was written, does).

    Series (B, L, C) are transposed to (B, C, L) for Conv1d; images (B, C, H, W) go to Conv2d as they are.
    For padded series (`lengths`), padding is masked after every layer and left out of the average.
    `norm` None (the default): batch norm for series, as FCN and ResNet for series use it (Wang et al.
    2017), none for images. Batch norm's training statistics leave the padding of varying-length series
    out (MaskedBatchNorm1d); for a per-step task they include later positions of the batch, and in eval
    mode the running statistics are used, so an output still depends on no later input and no padding.

    `multiscale`: the first layer as convolutions of each distinct kernel size side by side, the
    layer's channels split between them (SideBySide; InceptionTime's modules, Ismail Fawaz et al.
    2020). None (the default): on when the kernels are sized to a whole series and differ (10 and 5
    steps on ArrowHead's 251, 40, 20 and 10 on 2000), so the first layer sees the shapes that span 4%
    of the series and the local detail beside them; measured in docs/benchmarks.md ("A multi-scale
    first layer"). Kernels given by hand keep one size per layer unless multiscale=True.

    `handcrafted`: fixed filters beside the first layer (FixedFilters: rises and falls of 2 to 64 steps,
    peaks of 6 to 96, per input channel; Ismail-Fawaz et al. 2022), their outputs concatenated to the
    first layer's, so its batch norm, activation and the second layer read both; never trained. None
    (the default): on for a whole series of one channel without residual blocks, with batch norm (which
    brings their unscaled sums to the learnt channels' scale), its kernels sized to the data (a layout given by hand, as FCN's, is built as given unless handcrafted=True); off for several
    channels (each would bring its own 17 filters: 204 outputs on JapaneseVowels' 12 channels, at twice
    the time a run, for no gain measured), images (which have no time axis), per-position tasks (True
    there makes them causal) and residual blocks (their widths must be equal). They let a network that learns its filters from a few dozen series start from shapes that
    hold on most series; measured in docs/benchmarks.md ("Fixed filters beside the first layer").

    `downsample`: steps averaged into one before the first layer, so a long series costs what one of at
    most 500 steps does ("auto", the default: ceil(L / 500) on a whole series of L steps, 3 on ACSF1's
    1460; 1 for 500 steps or fewer, images and per-position tasks; layers.default_downsample). The
    kernels and fixed filters are sized to the averaged series. Measured in docs/benchmarks.md ("Long
    series averaged down").

    `dropout` (default 0: none) drops the pooled features in front of the linear head, where Gal et al.
    (2017) put the dropout of their CNN, so MC-dropout passes (`label-next --strategy bald`) have a
    layer to sample; it holds no weights, so a model with and without it has the same state_dict keys.
    """

    def __init__(self, meta, channels: int | list[int] = 32, depth: int = 3, kernel_size: int | list[int] | str | None = "auto", activation: str = "relu", norm: str | None = None, residual: bool = False, dropout: float = 0.0, multiscale: bool | None = None, handcrafted: bool | None = None, downsample: int | str = "auto"):
        super().__init__()
        # a long whole series is averaged down first (layers.default_downsample); the layers are sized
        # on `sized`, the meta of what the first layer reads (kernels, fixed filters)
        self.downsample, sized = resolve_downsample(meta, downsample, "cnn")
        if multiscale is not None and not isinstance(multiscale, bool):
            raise UserError(f"model 'cnn': multiscale must be true or false, got {multiscale!r}")
        if multiscale and meta.kind == "image":
            raise UserError("model 'cnn': multiscale applies to series (kernels of several lengths side by side); images take one kernel size per layer")
        if handcrafted is not None and not isinstance(handcrafted, bool):
            raise UserError(f"model 'cnn': handcrafted must be true or false, got {handcrafted!r}")
        if handcrafted and meta.kind == "image":
            raise UserError("model 'cnn': handcrafted applies to series (fixed filters for rises, falls and peaks along time); images have none")
        if handcrafted and residual:
            raise UserError("model 'cnn': handcrafted widens the first layer's output, so the residual blocks (equal widths) cannot take it; set handcrafted=false with residual")
        sized_to_data = isinstance(kernel_size, str) and kernel_size == "auto"
        if isinstance(dropout, bool) or not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise UserError(f"model 'cnn': dropout must be in [0, 1), got {dropout!r}")
        if not isinstance(residual, bool):
            raise UserError(f"model 'cnn': residual must be true or false, got {residual!r}")
        if norm is None:  # series: batch norm after every convolution, as FCN and ResNet for series do (Wang et al. 2017)
            norm = "none" if meta.kind == "image" else "batch"
        if norm not in NORMS:
            raise UserError(f"model 'cnn': norm must be one of {', '.join(NORMS)}, got {norm!r}")
        check_positive_int("depth", depth, "cnn")
        if kernel_size == "auto":  # the default: sized to the data (default_kernels); a stored run records the sizes
            kernel_size = default_kernels(sized, len(channels) if isinstance(channels, (list, tuple)) else depth)
        elif kernel_size == LEGACY_AUTO:  # runs stored on 2026-12-06 (models/registry.py STORED_VALUES)
            kernel_size = default_kernels(meta, len(channels) if isinstance(channels, (list, tuple)) else depth, share=100, longest=None)
        elif kernel_size is None:  # the default before 2026-12-06, as runs stored then record it: 5 steps; 3x3 on images
            kernel_size = 3 if meta.kind == "image" else 5
        lists = [len(v) for v in (channels, kernel_size) if isinstance(v, (list, tuple))]
        n_layers = lists[0] if lists else depth  # a list gives the number of layers
        widths, kernels = per_layer("channels", channels, n_layers), per_layer("kernel_size", kernel_size, n_layers)
        if len(widths) != len(kernels):
            raise UserError(f"model 'cnn': channels and kernel_size give {len(widths)} and {len(kernels)} layers; give lists of the same length (or one number)")
        if residual and len(set(widths)) > 1:
            raise UserError(f"model 'cnn': residual blocks add their input to their output, so every layer needs the same channels, got {widths}")
        depth = len(widths)
        self.is_image = meta.kind == "image"
        self.per_step = meta.task == "per_step"
        conv = nn.Conv2d if self.is_image else nn.Conv1d
        self.kind, self.n_symbols = meta.kind, symbols(meta)
        in_channels = meta.input_shape[0] if self.is_image else sequence_shape(meta)[1]
        layers: list[nn.Module] = []
        batch_norm = nn.BatchNorm2d if self.is_image else MaskedBatchNorm1d
        # zeros each layer pads its input with, (before, after) along every axis, so the output keeps the
        # input's length: one label per position must not see later positions, so (k - 1, 0) (causal);
        # otherwise the convolution pads k // 2 on both sides itself for an odd k, and an even k is padded
        # ((k - 1) // 2, k // 2) here (as Keras's "same")
        self.paddings = [(k - 1, 0) if self.per_step else (0, 0) if k % 2 else ((k - 1) // 2, k // 2) for k in kernels]
        # the first layer multi-scale: by default on a whole series whose kernels were sized to it and differ
        # (10-5-5 on 251 steps: kernels of 10 and 5 side by side), else only when asked
        if multiscale is None:
            multiscale = sized_to_data and not self.is_image and not self.per_step
        # the fixed filters beside the first layer: by default on a whole series of one channel whose kernels
        # were sized to it (not with residual blocks), with batch norm after them: their outputs are unscaled
        # sums (a rise of 64 steps adds 32 increases), which batch norm brings to the learnt channels' scale;
        # on C channels they would add 17 C (204 on JapaneseVowels' 12), twice the time
        if handcrafted is None:
            handcrafted = sized_to_data and not self.is_image and not self.per_step and not residual and in_channels == 1 and norm == "batch"
        self.handcrafted = handcrafted
        scales = sorted(set(kernels), reverse=True)[: widths[0]] if multiscale else []  # at least one channel per kernel size
        self.multiscale = len(scales) > 1
        for i, (width, k) in enumerate(zip(widths, kernels)):
            inside = k // 2 if not self.per_step and k % 2 else 0
            if i == 0 and self.multiscale:
                block = [SideBySide(in_channels, width, scales, causal=self.per_step)]
                self.paddings[0] = (0, 0)  # each branch pads its own input
            else:
                block = [conv(in_channels, width, k, padding=inside)]
            if i == 0 and handcrafted:
                fixed = FixedFilters(in_channels, sequence_shape(sized)[0], causal=self.per_step)
                if self.paddings[0] != (0, 0):  # the learnt layer pads its own input, as the fixed filters do
                    block = [nn.Sequential(nn.ConstantPad1d(self.paddings[0], 0.0), block[0])]
                    self.paddings[0] = (0, 0)
                block = [WithFixed(block[0], fixed)]
                width += fixed.out_channels  # batch norm and the second layer see both
            if norm == "batch":  # conv -> batch norm -> activation, as in FCN (Wang et al. 2017)
                block.append(batch_norm(width))
            layers.append(nn.Sequential(*block, make_activation(activation)))
            in_channels = width
        self.features = nn.ModuleList(layers)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()  # on the features the head reads
        self.head = nn.Linear(in_channels, meta.output_size)
        self.kernel_sizes, self.depth = kernels, depth
        # the steps each layer spans: a multi-scale first layer its longest kernel
        self.spans = [max(scales) if self.multiscale else kernels[0], *kernels[1:]]
        if handcrafted:  # ... or the longest fixed filter, when that is longer
            self.spans[0] = max(self.spans[0], self.features[0][0].fixed.longest)
        # what a stored run records: the sizes and the first layer's form, whatever rule chose them
        self.stored_args = {"kernel_size": list(kernels), "multiscale": self.multiscale, "handcrafted": handcrafted, "downsample": self.downsample}
        # residual: every block after the first (equal widths in and out) adds its input to its output,
        # h <- h + block(h), as in ResNet (He et al. 2016); the first block changes the width
        self.residual = residual

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.is_image:
            h = x  # (B, C, H, W)
            for k, layer in enumerate(self.features):
                out = layer(F.pad(h, self.paddings[k] * 2) if any(self.paddings[k]) else h)  # (B, channels, H, W)
                h = out + h if self.residual and k > 0 else out
            return self.head(self.drop(h.flatten(2).mean(-1)))  # global average over positions -> (B, n_classes)
        h = sequence_view(x, self.kind, self.n_symbols).transpose(1, 2)  # (B, L, C) -> (B, C, L)
        h, lengths = average_steps(h, lengths, self.downsample)  # a long series averaged down: (B, C, L / f)
        mask = None if lengths is None else step_mask(lengths.to(x.device), h.shape[2])[:, None, :]  # (B, 1, L)
        for k, layer in enumerate(self.features):
            out = F.pad(h, self.paddings[k]) if any(self.paddings[k]) else h
            for module in layer:  # conv -> batch norm (over real steps only) -> activation: (B, channels, L)
                out = module(out, mask) if isinstance(module, MaskedBatchNorm1d) else module(out)
            h = out + h if self.residual and k > 0 else out
            if mask is not None:
                # zero the padded steps after every layer, so each layer sees zeros beyond the real end,
                # exactly the zero padding an unpadded (shorter) series gets at its boundary
                h = h * mask
        if self.per_step:
            return self.head(self.drop(h.transpose(1, 2)))  # a label per position: (B, L, n_classes)
        if mask is None:
            return self.head(self.drop(h.mean(-1)))
        return self.head(self.drop(h.sum(-1) / mask.sum(-1).clamp(min=1)))  # average over real steps only

    def receptive_field(self) -> int:
        """Theoretical receptive field (positions per axis) of one output position: 1 + sum over layers of
        (k - 1), in input steps (times `downsample`: each position the layers read averages that many)."""
        return self.downsample * (1 + sum(k - 1 for k in self.spans))

    def context_length(self) -> int:
        """Positions an output at position t depends on (one label per position, causal): t-R+1 .. t, R the receptive field."""
        return self.receptive_field()


@register_model("cnn", family="convolutional", summary="convolutions with shared kernels (1-D for series, 2-D for images), global average pooling", default_lr=1e-2, width="channels")
def build_cnn(meta, *, channels: int | list[int] = 32, depth: int = 3, kernel_size: int | list[int] | str | None = "auto", activation: str = "relu", norm: str | None = None, residual: bool = False, dropout: float = 0.0, multiscale: bool | None = None, handcrafted: bool | None = None, downsample: int | str = "auto") -> nn.Module:
    return CNN(meta, channels=channels, depth=depth, kernel_size=kernel_size, activation=activation, norm=norm, residual=residual, dropout=dropout, multiscale=multiscale, handcrafted=handcrafted, downsample=downsample)

"""Light data augmentation per kind of data, applied to each training batch (never to validation or
test data), drawn from its own seeded generator so a run repeats exactly.

- series (B, L, C): every series shifted in time by up to 10% of its length (zero fill, as when a
  pattern starts later), scaled by a factor in [0.9, 1.1], plus Gaussian noise of std 0.05 (series are
  z-normalised, so about 5% of their spread). Padded series (varying length) are scaled and noised on
  their real steps only and not shifted, so padding stays zero.
- images (B, C, H, W): shifted by up to 1/8 of the height and width, in whole pixels (zero fill), the
  "small shifts" long used on digits.
Classification only: on regression (the adding problem's sum) or next-step targets a shift or a scale
would change what the right answer is.
"""

from __future__ import annotations

import torch

from ..errors import UserError

SHIFT_FRACTION = 0.1  # series: largest shift, as a share of the length
SCALE_RANGE = (0.9, 1.1)
NOISE_STD = 0.05
IMAGE_SHIFT_FRACTION = 1 / 8


def check_augmentable(meta) -> None:
    if meta.task != "classify":
        raise UserError(f"augmentation applies to classification; {meta.name} is a {meta.task} task (leave out `augment=True`)")
    if meta.kind not in ("series", "image"):
        raise UserError(f"augmentation is defined for series and images, not {meta.kind} (leave out `augment=True`)")


def _shift(x: torch.Tensor, dim: int, shifts: torch.Tensor) -> torch.Tensor:
    """Shift every example of `x` along `dim` by its own whole number of positions, zero fill."""
    n = x.shape[dim]
    pos = torch.arange(n, device=x.device)
    source = pos[None, :] - shifts[:, None]  # (B, n): where each output position reads from
    valid = (source >= 0) & (source < n)
    shape = [1] * x.dim()
    shape[0], shape[dim] = x.shape[0], n
    index = source.clamp(0, n - 1).view(shape).expand_as(x)
    return x.gather(dim, index) * valid.view(shape).to(x.dtype)


def augment(x: torch.Tensor, kind: str, generator: torch.Generator, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """An augmented copy of the batch `x`; random numbers come from `generator` (CPU)."""
    b = x.shape[0]
    if kind == "image":
        h, w = x.shape[2], x.shape[3]
        sh, sw = max(1, int(h * IMAGE_SHIFT_FRACTION)), max(1, int(w * IMAGE_SHIFT_FRACTION))
        dy = torch.randint(-sh, sh + 1, (b,), generator=generator).to(x.device)
        dx = torch.randint(-sw, sw + 1, (b,), generator=generator).to(x.device)
        return _shift(_shift(x, 2, dy), 3, dx)
    length = x.shape[1]
    reach = max(1, int(length * SHIFT_FRACTION))
    shifts = torch.randint(-reach, reach + 1, (b,), generator=generator)
    scale = torch.empty(b).uniform_(*SCALE_RANGE, generator=generator)
    noise = torch.randn(x.shape, generator=generator) * NOISE_STD
    out = x * scale.to(x.device)[:, None, None] + noise.to(x.device)
    if lengths is None:
        return _shift(out, 1, shifts.to(x.device))
    real = (torch.arange(length, device=x.device)[None, :] < lengths[:, None]).to(x.dtype)  # (B, L)
    return out * real[:, :, None]  # padding stays zero; varying-length series are not shifted

"""Order sensitivity: the same data with its input positions shuffled by one fixed permutation.

Models that tie weights across positions (convolutions, recurrent cells) rely on neighbouring
positions meaning something; the MLP, which has a separate weight for every position, does not care
(MNIST-1D, Greydanus 2020: MLP 68 -> 68, CNN 94 -> 56, GRU 91 -> 57).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError


def position_permutation(n_positions: int, seed: int) -> np.ndarray:
    """The fixed permutation of `n_positions` for `seed` (the same for every split and run)."""
    return np.random.default_rng(seed).permutation(n_positions)


def permute_positions(x: torch.Tensor, kind: str, seed: int) -> torch.Tensor:
    """Shuffle the input positions of a batch: series (N, L, C) along L; images (N, C, H, W) over their
    H*W pixels (the same shuffle in every channel)."""
    if kind == "image":
        n, c, h, w = x.shape
        perm = torch.as_tensor(position_permutation(h * w, seed))
        return x.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)
    perm = torch.as_tensor(position_permutation(x.shape[1], seed))
    return x[:, perm]


def permuted_dataset(dataset, seed: int):
    """The data set with every split's positions shuffled by the permutation of `seed`.

    Refused where a shuffle has no meaning: one label per position (the targets are tied to the
    order) and series of varying length (the shuffle would mix padding into the real steps)."""
    from dataclasses import replace

    meta = dataset.meta
    if meta.task == "per_step":
        raise UserError(f"order sensitivity needs one label per input; '{meta.name}' labels every position, whose order is the task")
    if any(s.lengths is not None for s in (dataset.train, dataset.val, dataset.test)):
        raise UserError(f"order sensitivity needs series of one length; '{meta.name}' has series of varying length")
    splits = {k: replace(getattr(dataset, k), x=permute_positions(getattr(dataset, k).x, meta.kind, seed)) for k in ("train", "val", "test")}
    return replace(dataset, **splits, meta=replace(meta, description=f"{meta.description} (positions shuffled, seed {seed})".strip()))

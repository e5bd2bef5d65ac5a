"""Image sources. `digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images)."""

from __future__ import annotations

import numpy as np

from . import register_source
from .base import Dataset, DatasetMeta, make_split, stratified_split

SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
DIGITS_VAL_FRACTION = 0.25  # of what remains after the test split: 60/20/20 overall


@register_source("digits", kind="image", summary="scikit-learn 8x8 handwritten digits (1797 images, bundled), fixed stratified split")
def load_digits_dataset() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (N, C=1, H=8, W=8), pixels in [0, 1]
    y = d.target.astype(np.int64)
    rest, test = stratified_split(y, DIGITS_TEST_FRACTION, SPLIT_SEED)
    keep, val = stratified_split(y[rest], DIGITS_VAL_FRACTION, SPLIT_SEED)
    train, val = rest[keep], rest[val]
    meta = DatasetMeta(
        name="digits",
        kind="image",
        task="classify",
        input_shape=tuple(x.shape[1:]),
        n_classes=10,
        class_names=[str(i) for i in range(10)],
        description="8x8 grey-level digit images; fixed stratified split 60/20/20 (train/val/test, seed 0)",
        reference="UCI optical recognition of handwritten digits, bundled with scikit-learn",
    )
    return Dataset(train=make_split(x[train], y[train]), val=make_split(x[val], y[val]), test=make_split(x[test], y[test]), meta=meta)

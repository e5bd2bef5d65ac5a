"""Time-series sources. MNIST-1D (Greydanus 2020): generated offline with the `mnist1d` package."""

from __future__ import annotations

import random

import numpy as np

from ..utils import atomic_write_bytes, cache_dir
from .registry import register_source
from .base import Dataset, DatasetMeta, make_split, stratified_split

MNIST1D_VAL_FRACTION = 0.1  # 400 of the 4000 published training examples; the test set stays as published
SPLIT_SEED = 0  # fixed: every run of every model sees the same split


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """MNIST-1D with the package's default arguments (seed 42): 4000 train / 1000 test, length 40.

    `make_dataset` seeds NumPy's and Python's global generators; their states are restored afterwards
    so loading data never changes the caller's random streams. Its download path is never used.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


def _mnist1d_arrays() -> dict[str, np.ndarray]:
    path = cache_dir() / "mnist1d-default-seed42.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is regenerated below
    arrays = _generate_mnist1d()
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return arrays


@register_source("mnist1d", kind="series", summary="MNIST-1D (Greydanus 2020): 10 digit templates as 1-D signals, generated offline")
def load_mnist1d() -> Dataset:
    a = _mnist1d_arrays()
    x = a["x"].astype(np.float32)[:, :, None]  # (N, L=40, C=1)
    x_test = a["x_test"].astype(np.float32)[:, :, None]
    keep, held = stratified_split(a["y"], MNIST1D_VAL_FRACTION, SPLIT_SEED)
    meta = DatasetMeta(
        name="mnist1d",
        kind="series",
        task="classify",
        input_shape=tuple(x.shape[1:]),
        n_classes=10,
        class_names=[str(i) for i in range(10)],
        description="MNIST-1D: 10 classes of 1-D signals of length 40; 3600 train / 400 val (carved from the published train) / 1000 test",
        reference="Greydanus, Scaling down deep learning, 2020 (package mnist1d, make_dataset, seed 42)",
    )
    return Dataset(
        train=make_split(x[keep], a["y"][keep]),
        val=make_split(x[held], a["y"][held]),
        test=make_split(x_test, a["y_test"]),
        meta=meta,
    )

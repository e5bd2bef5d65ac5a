"""What every user file shares once its cells are read (data/files.py, data/longform.py, data/archive.py):
labels as classes, the checks on them, z-normalisation, and the fixed seeded stratified split."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Dataset, DatasetMeta, make_split, stratified_split

SPLIT_SEED = 0  # fixed: every run of every model sees the same split of the user's data
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2  # of what remains after the test split: 64/16/20 overall
MIN_EXAMPLES = 3  # one each for train, validation and test


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# -- shared: checks, labels, normalisation, the split -------------------------------------------------------
def _number_name(value: float) -> str:
    """A numeric label as a user wrote it: 3.0 -> "3", 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _as_numbers(labels: np.ndarray) -> np.ndarray | None:
    """(N,) labels as float64 when every one is a number (numeric dtype or numeric strings), else None."""
    try:
        return labels.astype(np.float64)
    except ValueError:
        return None


def _encode_labels(labels: np.ndarray, where) -> tuple[np.ndarray, list[str]]:
    """(N,) labels (numbers or strings) -> (N,) int64 class ids 0..K-1 over the sorted unique labels,
    plus the class names. Numbers sort as numbers (2 before 10); `where(i)` names example i in errors."""
    numbers = _as_numbers(labels)
    if numbers is None:
        classes, y = np.unique(labels.astype(str), return_inverse=True)
        return y.reshape(-1).astype(np.int64), [str(c) for c in classes]
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        i = int(bad[0])
        raise UserError(f"{where(i)} has the label '{labels[i]}', which is not a class; every example needs a label (a number or a name)")
    classes, y = np.unique(numbers, return_inverse=True)
    return y.reshape(-1).astype(np.int64), [_number_name(c) for c in classes]


def _check_classes(y: np.ndarray, class_names: list[str], path: str, label: str, what: str, fix: str = "give the column that holds the classes with --label-column (label_column in Python)") -> None:
    """More different labels than max(20, half the examples) are not classes: most likely a quantity
    (a fat content, a price) or an identifier, which a comparison of classifiers would score as
    hundreds of classes of one or two examples each."""
    if len(class_names) <= max(20, len(y) // 2):
        return
    quantity = all(_is_number(c) for c in class_names)
    raise UserError(
        f"'{path}': {label} has {len(class_names)} different values in {len(y)} {what}, too many to be classes"
        + ("; they look like a quantity, and nncompare compares classifiers on a file (regression: built-in data sets only)" if quantity else "")
        + f"; {fix}"
    )


def _check_sizes(y: np.ndarray, class_names: list[str], path: str, what: str) -> None:
    """Enough examples for a train/val/test split, and at least two classes to tell apart."""
    if len(y) < MIN_EXAMPLES:
        raise UserError(
            f"'{path}' holds {len(y)} {what}; at least {MIN_EXAMPLES} are needed to split it into train, validation and test (more for useful results)"
        )
    if len(class_names) < 2:
        raise UserError(f"'{path}' has only one class ('{class_names[0]}'); a classifier needs examples of at least 2 classes")


HUGE = 1e100  # magnitudes beyond which squaring overflows float64 (see znormalise)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def znormalise(x: np.ndarray) -> np.ndarray:
    """(N, L, C) -> each series and channel shifted to mean 0 and scaled to std 1 over its L steps.

    A (nearly) constant series becomes zeros instead of a division by zero: its floating-point std is
    rounding noise, so the threshold is relative to the series' magnitude.
    """
    x = x.astype(np.float64)
    # z-normalisation does not change when a series is scaled: a series with values near float64's
    # limit (1e308) is divided by its largest magnitude first, so its mean and std cannot overflow;
    # every other series is left exactly as it was
    peak = np.abs(x).max(axis=1, keepdims=True)  # (N, 1, C)
    x = x / np.where(peak > HUGE, peak, 1.0)
    mean = x.mean(axis=1, keepdims=True)  # (N, 1, C)
    std = x.std(axis=1, keepdims=True)  # (N, 1, C)
    flat = std <= 1e-8 * np.maximum(1.0, np.abs(mean))
    out = (x - mean) / np.where(flat, 1.0, std)
    return np.where(flat, 0.0, out).astype(np.float32)


def _split_indices(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed seeded stratified split as (train, val, test) indexes: test 20%, then validation 20% of the rest."""
    rest, test = stratified_split(y, TEST_FRACTION, SPLIT_SEED)
    keep, val = stratified_split(y[rest], VAL_FRACTION, SPLIT_SEED)
    return rest[keep], rest[val], test


def _split_dataset(x: np.ndarray, y: np.ndarray, meta_fields: dict, split: tuple | None = None, lengths: np.ndarray | None = None) -> Dataset:
    """The fixed seeded stratified split (`split`: its indexes, when already made); `lengths`: the real
    steps of zero-padded series of varying length."""
    train, val, test = split if split is not None else _split_indices(y)
    sizes = f"split {len(train)} / {len(val)} / {len(test)} (train / val / test, stratified, seed {SPLIT_SEED})"
    meta = DatasetMeta(task="classify", input_shape=tuple(x.shape[1:]), **meta_fields)
    meta.description = f"{meta.description}; {sizes}"
    return Dataset(
        train=make_split(x[train], y[train], None if lengths is None else lengths[train]),
        val=make_split(x[val], y[val], None if lengths is None else lengths[val]),
        test=make_split(x[test], y[test], None if lengths is None else lengths[test]),
        meta=meta,
    )


def _series_dataset(x: np.ndarray, y: np.ndarray, class_names: list[str], path: str, source: str, normalize: bool, extra: dict | None = None, lengths: np.ndarray | None = None) -> Dataset:
    """x (N, L, C) float -> a series Dataset, z-normalised per series and channel unless told not to;
    `lengths`: the real steps of zero-padded series of varying length, which alone are normalised."""
    from .ucr import z_normalize

    n, length, channels = x.shape
    if not normalize and x.size and np.abs(x).max() > FLOAT32_MAX:
        i, t, c = (int(k) for k in np.unravel_index(np.abs(x).argmax(), x.shape))
        raise UserError(
            f"'{path}': series {i}, step {t}, channel {c} is {x[i, t, c]:g}, beyond what float32 holds (about ±3.4e38); "
            f"leave out `normalize=False` (z-normalised values fit) or rescale the file"
        )
    if normalize:
        x = znormalise(x) if lengths is None else z_normalize(x, lengths).astype(np.float32)
    else:
        x = x.astype(np.float32)
    scaling = ("z-normalised per series and channel" + ("" if lengths is None else " over its real steps")) if normalize else "raw values"
    steps = f"{length} steps" if lengths is None else f"{int(lengths.min())}-{length} steps (zero-padded at the end)"
    return _split_dataset(
        x,
        y,
        {
            "name": path,
            "kind": "series",
            "n_classes": len(class_names),
            "class_names": class_names,
            "description": f"{source} '{path}': {n} series of {steps} x {channels} channel(s), {len(class_names)} classes, {scaling}",
            "reference": f"the user's file '{path}'",
            **(extra or {}),
        },
        lengths=lengths,
    )

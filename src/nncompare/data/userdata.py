"""What every user file shares once its cells are read (data/files.py, data/longform.py, data/archive.py):
labels as classes (or as values to predict: regression), the checks on them, z-normalisation, and the
fixed seeded split (stratified by class; random for regression)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Dataset, DatasetMeta, make_split, standardise_targets, stratified_split, targets_note

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


def _too_many_classes(n_classes: int, n: int) -> bool:
    """More different labels than max(20, half the examples) are not classes: a comparison of
    classifiers would score them as hundreds of classes of one or two examples each."""
    return n_classes > max(20, n // 2)


def _numbering(class_names: list[str], n: int) -> str | None:
    """Why whole-number labels are not a quantity: all different, as an identifier's are; or every
    number from 0 or 1 up to K, as class numbers are. None: neither (or not whole numbers)."""
    if not all(_is_number(c) and float(c).is_integer() for c in class_names):
        return None
    if len(class_names) == n:
        return "whole numbers, all different, as an identifier's are"
    numbers = sorted(int(float(c)) for c in class_names)
    if numbers[0] in (0, 1) and numbers[-1] - numbers[0] == len(numbers) - 1:
        return f"every whole number from {numbers[0]} to {numbers[-1]}, as class numbers are"
    return None


def _check_classes(y: np.ndarray, class_names: list[str], path: str, label: str, what: str, fix: str = "give the column that holds the classes with --label-column (label_column in Python)") -> None:
    """Too many different labels to be classes (`_too_many_classes`) that are not a quantity either
    (`_as_quantity`): names, or whole numbers that number something (`_numbering`)."""
    if not _too_many_classes(len(class_names), len(y)):
        return
    why = _numbering(class_names, len(y))
    raise UserError(
        f"'{path}': {label} has {len(class_names)} different values in {len(y)} {what}, too many to be classes"
        + (f"; they are {why} (--task regress reads them as a quantity, --task classify as classes)" if why else "")
        + f"; {fix}"
    )


def _as_quantity(labels: np.ndarray, class_names: list[str]) -> np.ndarray | None:
    """The labels as float64 values to predict (regression) when they are a quantity, not classes:
    every one a number, too many different ones to be classes (`_too_many_classes`: a fat content, a
    price, a temperature), and not whole numbers that number something (`_numbering`: an identifier,
    or class numbers 1..K; refused by `_check_classes`). Else None: classes."""
    values = _as_numbers(labels)
    if values is None or not _too_many_classes(len(class_names), len(labels)) or _numbering(class_names, len(labels)):
        return None
    return values


TASKS = ("classify", "regress")  # what a file's label is read as: `task`, else `_as_quantity` decides


def check_task(task) -> None:
    if task is not None and task not in TASKS:
        raise UserError(f"task must be one of {', '.join(TASKS)} (whether a file's label is classes or a quantity), got {task!r}")


def _classes_or_values(labels: np.ndarray, where, path: str, label: str, what: str, fix: str | None = None, task: str | None = None) -> tuple[np.ndarray, list[str]]:
    """(N,) labels -> int64 class ids and the class names, checked (`_check_sizes`, `_check_classes`);
    or, when they are a quantity (`_as_quantity`), float64 values to predict and no class names.
    `task` ("classify" or "regress", the user's --task) decides instead of the rule: "classify" reads
    any labels as classes, however many; "regress" needs every label a number."""
    y, class_names = _encode_labels(labels, where) if task != "regress" else (None, [])
    if task == "regress":
        values = _as_numbers(np.asarray(labels))
        if values is None or not np.isfinite(values).all():
            i = next(i for i, v in enumerate(labels) if not (_is_number(str(v)) and np.isfinite(float(v))))
            raise UserError(f"{where(i)} has the label '{labels[i]}', which is not a number; regression (task regress) needs a number for every example")
    else:
        values = None if task == "classify" else _as_quantity(labels, class_names)
    if values is not None:
        if len(values) < MIN_EXAMPLES:
            _check_sizes(values, class_names, path, what)
        return values, []
    _check_sizes(y, class_names, path, what)
    if task != "classify":
        _check_classes(y, class_names, path, label, what, *([fix] if fix else []))
    return y, class_names


def predicted(class_names: list[str]) -> str:
    """What a user file's examples are labelled with, for its description."""
    return f"{len(class_names)} classes" if class_names else "a value to predict (regression; targets standardised with the training split's mean and std)"


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
    """The fixed seeded split as (train, val, test) indexes: test 20%, then validation 20% of the rest;
    stratified by class, random for regression targets (float y)."""
    rest, test = split_off(y, TEST_FRACTION)
    keep, val = split_off(y[rest], VAL_FRACTION)
    return rest[keep], rest[val], test


def split_off(y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indexes (keep, held out) with `fraction` held out, seed SPLIT_SEED: stratified by class for class
    ids, a plain random split for regression targets (float y)."""
    if not np.issubdtype(y.dtype, np.floating):
        return stratified_split(y, fraction, SPLIT_SEED)
    from sklearn.model_selection import train_test_split

    keep, held = train_test_split(np.arange(len(y)), test_size=max(int(np.ceil(fraction * len(y))), 1), random_state=SPLIT_SEED)
    return np.sort(keep), np.sort(held)


def _split_dataset(x: np.ndarray, y: np.ndarray, meta_fields: dict, split: tuple | None = None, lengths: np.ndarray | None = None) -> Dataset:
    """The fixed seeded stratified split (`split`: its indexes, when already made); `lengths`: the real
    steps of zero-padded series of varying length."""
    train, val, test = split if split is not None else _split_indices(y)
    regress = np.issubdtype(y.dtype, np.floating)  # values to predict (`_classes_or_values`)
    sizes = f"split {len(train)} / {len(val)} / {len(test)} (train / val / test, {'random' if regress else 'stratified'}, seed {SPLIT_SEED})"
    meta = DatasetMeta(task="classify", input_shape=tuple(x.shape[1:]), **meta_fields)
    if regress:
        y, meta.target_scaling = standardise_targets(y, train)
        meta.task, meta.n_classes, meta.class_names, meta.n_outputs = "regress", 0, [], 1
        meta.notes = [*meta.notes, targets_note(meta.name, meta.target_scaling)]
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
            "description": f"{source} '{path}': {n} series of {steps} x {channels} channel(s), {predicted(class_names)}, {scaling}",
            "reference": f"the user's file '{path}'",
            **(extra or {}),
        },
        lengths=lengths,
    )

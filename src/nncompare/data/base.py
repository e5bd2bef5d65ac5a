"""The Dataset contract: train/val/test tensors plus the metadata every model and trainer reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

KINDS = ("image", "series", "text", "table")
TASKS = ("classify", "regress", "per_step")


@dataclass
class Split:
    """One split: inputs in the data set's natural layout, targets (class ids for `classify`)."""

    x: torch.Tensor  # series (N, L, C); image (N, C, H, W); table (N, F) encoded features
    y: torch.Tensor  # (N,) int64 class ids
    # series of varying length: (N,) int64 real steps per series; x is zero-padded at the end to L.
    # None: every series has all L steps.
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DatasetMeta:
    name: str  # the source string that loaded it, e.g. "mnist1d"
    kind: str  # one of KINDS
    task: str  # one of TASKS
    input_shape: tuple  # one example, natural layout: series (L, C), image (C, H, W), table (F,)
    n_classes: int  # classes (classify) or symbols per position (per_step); 0 for regression
    class_names: list = field(default_factory=list)
    description: str = ""
    reference: str = ""  # where the data comes from (paper / package)
    n_outputs: int = 0  # values predicted per input (regress)
    baseline: dict = field(default_factory=dict)  # a trivial predictor's score, e.g. {"name": ..., "test MSE": ...}
    # how a CSV's columns were read (data/files.py): header, label, identifier and dropped columns, and
    # for a table the encoding of each feature column (data/tables.py), which predict re-applies
    columns: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)  # one line each, said once when the data is loaded (e.g. "read as a table")
    # series of varying length (a split has `lengths`): new inputs may be shorter than input_shape's L,
    # and are zero-padded with their lengths as the training series were (set by load_dataset)
    varying_length: bool = False
    # {"mean": [C], "std": [C]}: the training split's per-channel statistics that multivariate archive
    # series were standardised with (data/ucr.py); predict applies them to new inputs from files
    channel_scaling: dict = field(default_factory=dict)
    # {"mean": m, "std": s}: regression targets read from a file are trained on and scored as (y - m) / s,
    # m and s the training split's (so a test MSE of 1.0 is about what predicting the mean scores);
    # predictions are given back in the file's units, y = m + s * output (models/inference.py)
    target_scaling: dict = field(default_factory=dict)

    @property
    def output_size(self) -> int:
        """Outputs a model produces per example (per position for per_step)."""
        return self.n_outputs if self.task == "regress" else self.n_classes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    meta: DatasetMeta

    def sizes(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def make_split(x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> Split:
    """Tensors for one split: float32 inputs; int64 class ids, or float32 targets for regression."""
    y = np.ascontiguousarray(y)
    return Split(
        x=torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
        y=torch.as_tensor(y, dtype=torch.float32 if np.issubdtype(y.dtype, np.floating) else torch.int64),
        lengths=None if lengths is None else torch.as_tensor(np.asarray(lengths), dtype=torch.int64),
    )


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with `fraction` of each class held out; fixed by `seed`.

    At least one example per class is held out when the data allow; when a class has a single example
    the split cannot be stratified and falls back to a plain seeded random split.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    n_classes = len(np.unique(y))
    held_count = max(int(np.ceil(fraction * len(y))), 1)  # as scikit-learn rounds a fractional test_size
    counts = np.unique(y, return_counts=True)[1]
    can_stratify = counts.min() >= 2 and n_classes <= held_count <= len(y) - n_classes
    if can_stratify:
        keep, held = train_test_split(idx, test_size=held_count, stratify=y, random_state=seed)
    else:
        keep, held = train_test_split(idx, test_size=held_count, random_state=seed)
    return np.sort(keep), np.sort(held)


def standardise_targets(y: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, dict]:
    """Regression targets (N,) -> (y - m) / s with the mean m and std s of the training indexes, and
    {"mean": m, "std": s} (DatasetMeta.target_scaling). Values that are all the same on the training
    split keep s = 1."""
    mean, std = float(y[train].mean()), float(y[train].std())
    std = std if std > 0 else 1.0
    return (y - mean) / std, {"mean": mean, "std": std}


def targets_note(source: str, scaling: dict, why: str = "the label read as a quantity") -> str:
    """The one line a regression data set says when loaded (`why` it is regression): how its scores
    read in the file's units."""
    return (
        f"{source}: regression ({why}): targets standardised with the training split's mean {scaling['mean']:.4g} "
        f"and std {scaling['std']:.4g}; a test MSE of m is an RMSE of {scaling['std']:.4g} x sqrt(m) in the file's units, and 1.0 about what predicting the mean scores"
    )

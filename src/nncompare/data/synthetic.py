"""Long-memory tasks as defined in Bai, Kolter & Koltun 2018 (the TCN paper), generated
deterministically: the same T always gives the same data.

adding:T  two channels of length T: values drawn from U[0, 1) and a marker channel holding two 1s, one
          in each half of the sequence; the target is the sum of the two marked values (MSE). Always
          predicting 1 scores Var(U1 + U2) = 1/6 ≈ 0.1667.
copy:T    a sequence of T + 20 symbols: ten digits from 1..8, T - 1 blanks (0), the delimiter 9 and ten
          more 9s; the target is blank everywhere except the last ten positions, which repeat the ten
          digits (cross-entropy at every position). A memoryless predictor (blank, then uniform over
          1..8 for the last ten) scores 10 ln 8 / (T + 20).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError
from .registry import register_family
from .base import Dataset, DatasetMeta, make_split

SIZES = {"train": 4000, "val": 500, "test": 1000}  # examples per split; big enough to learn, small enough for 2 cores
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}  # one fixed generator per split: no overlap by construction
COPY_DIGITS = 10  # digits to remember (Bai et al. 2018)
COPY_SYMBOLS = 10  # 0 blank, 1..8 digits, 9 delimiter; inputs are one-hot over these


def parse_length(text: str, family: str) -> int:
    try:
        t = int(text)
    except ValueError:
        raise UserError(f"{family}:{text}: T must be a whole number of time steps, as in {family}:200") from None
    if t < 2:
        raise UserError(f"{family}:{text}: T must be at least 2, as in {family}:200")
    return t


def adding_problem(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (n, T, 2): values and markers; y (n,): the sum of the two marked values."""
    rng = np.random.default_rng(seed)
    values = rng.random((n, length))
    first = rng.integers(0, length // 2, n)  # one marker in the first half ...
    second = rng.integers((length + 1) // 2, length, n)  # ... and one in the second
    markers = np.zeros((n, length))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=2)  # (n, T, C=2)
    y = values[np.arange(n), first] + values[np.arange(n), second]
    return x.astype(np.float32), y.astype(np.float32)


def copy_memory(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (n, T+20, 10) one-hot symbols; y (n, T+20) the symbol to output at each position."""
    rng = np.random.default_rng(seed)
    digits = rng.integers(1, 9, (n, COPY_DIGITS))  # 1..8
    total = length + 2 * COPY_DIGITS
    symbols = np.zeros((n, total), dtype=np.int64)
    symbols[:, :COPY_DIGITS] = digits
    symbols[:, -(COPY_DIGITS + 1) :] = 9  # the delimiter, then ten more 9s
    target = np.zeros((n, total), dtype=np.int64)
    target[:, -COPY_DIGITS:] = digits
    x = np.eye(COPY_SYMBOLS, dtype=np.float32)[symbols]  # (n, T+20, 10) one-hot
    return x, target


def _splits(make, length: int) -> dict:
    return {name: make_split(*make(SIZES[name], length, SPLIT_SEEDS[name])) for name in SIZES}


@register_family("adding", kind="series", summary="adding problem (Bai et al. 2018): sum the two marked values of a length-T series (regression)", argument="T")
def load_adding(argument: str) -> Dataset:
    length = parse_length(argument, "adding")
    splits = _splits(adding_problem, length)
    test_y = splits["test"].y
    meta = DatasetMeta(
        name=f"adding:{length}",
        kind="series",
        task="regress",
        input_shape=(length, 2),
        n_classes=0,
        n_outputs=1,
        description=f"adding problem, T={length}: values U[0,1) and two markers; target the sum of the marked values",
        reference="Hochreiter & Schmidhuber 1997; as defined in Bai, Kolter & Koltun 2018",
        baseline={
            "name": "always predict 1",
            "score_name": "test MSE",
            "expected": 1 / 6,
            "measured": float(((test_y - 1.0) ** 2).mean()),
        },
    )
    return Dataset(train=splits["train"], val=splits["val"], test=splits["test"], meta=meta)


@register_family("copy", kind="series", summary="copy memory (Bai et al. 2018): repeat ten digits after T blanks (one label per position)", argument="T")
def load_copy(argument: str) -> Dataset:
    length = parse_length(argument, "copy")
    splits = _splits(copy_memory, length)
    total = length + 2 * COPY_DIGITS
    meta = DatasetMeta(
        name=f"copy:{length}",
        kind="series",
        task="per_step",
        input_shape=(total, COPY_SYMBOLS),
        n_classes=COPY_SYMBOLS,
        class_names=["blank"] + [str(d) for d in range(1, 9)] + ["9 (delimiter)"],
        description=f"copy memory, T={length}: remember 10 digits over {length} blanks; {total} positions",
        reference="Hochreiter & Schmidhuber 1997; as defined in Bai, Kolter & Koltun 2018",
        baseline={
            "name": "memoryless (blank, then uniform over 1..8)",
            "score_name": "test loss",
            "expected": COPY_DIGITS * math.log(8) / total,
        },
    )
    return Dataset(train=splits["train"], val=splits["val"], test=splits["test"], meta=meta)

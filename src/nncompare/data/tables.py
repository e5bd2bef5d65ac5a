"""Tables: CSV files whose columns are named features (numbers, categories, gaps), not the ordered
steps of one signal. The rule that tells the two apart, and the encoding a table gets.

The rule (documented in docs/data.md), applied to the columns left after the label column, the
identifier columns and `drop_columns` are set aside, when the file is not in long layout (one row per
time step, data/longform.py); the first that holds decides:

1. `kind="table"` or `kind="series"` (`--as table|series`) was given: that;
2. a header row whose names are an ordered run of positions (`t0, t1, ...`, `1, 2, 3`, `x_1 ... x_40`,
   `0.5, 1.0, ...`: the same text around numbers that increase) -> series;
3. any other header row (named columns: `age, income, city`) -> table;
4. no header row: a categorical column (at least half of its cells text) -> table;
5. otherwise -> series, one per row, as before (a missing value in a series is then an error that
   names the cell and suggests `--as table`).

In a table a cell is missing when it is empty or reads NA, N/A, NaN, null, None or ?.

The encoding (Gorishniy et al. 2021, "Revisiting deep learning models for tabular data", use the same
for their MLP baseline) is fitted on the training split only and stored in the data set's meta as
plain JSON, so `predict` re-applies it to new rows:

- a numeric column: missing values imputed with the training median, then standardised with the
  training mean and std; a 0/1 missing-indicator column follows when the training split had gaps;
- a categorical column: one-hot over its categories in the training split (at most MAX_CATEGORIES,
  the most frequent); a missing value, a rarer category or one never seen in training is all zeros.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}  # cells read as missing, compared lower-case
MAX_CATEGORIES = 50  # one-hot columns per categorical column; rarer categories encode as all zeros
MIN_ID_ROWS = 5  # an all-distinct text column is an identifier only with at least this many rows
LABEL_NAMES = ("label", "target", "class", "y")  # a column so named is the default label column
INDEX_NAMES = ("", "unnamed: 0", "index")  # what pandas' to_csv writes over its row index


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def is_numeric_column(cells: list[str]) -> bool:
    """Every cell that is not missing is a finite number (and at least one is there)."""
    present = [c for c in cells if not is_missing(c)]
    return bool(present) and all(_number(c) is not None for c in present)


def id_like_name(name: str) -> bool:
    """`id`, `ID`, `patient_id`, `sample-id`, `customerId`, `uuid`."""
    low = name.strip().lower()
    if low in ("id", "uid", "uuid", "identifier"):
        return True
    return bool(re.search(r"[_\s\-.]id$", low) or re.search(r"[a-z]I[dD]$", name.strip()))


def is_identifier(name: str | None, cells: list[str]) -> bool:
    """An identifier column: named like one, or text (not numbers) with every value distinct."""
    if name is not None and id_like_name(name):
        return True
    if name is not None and name.strip().lower() in INDEX_NAMES and _row_numbers(cells):
        return True  # pandas' to_csv writes its row index as an unnamed first column
    text = all(not is_missing(c) and _number(c) is None for c in cells)  # every cell a word, none a number
    return len(cells) >= MIN_ID_ROWS and text and len(set(cells)) == len(cells)


def named_label(header: list[str]) -> int | None:
    """The one column named label, target, class or y (any case), if there is exactly one."""
    named = [j for j, h in enumerate(header) if h.strip().lower() in LABEL_NAMES]
    return named[0] if len(named) == 1 else None


def _row_numbers(cells: list[str]) -> bool:
    """The cells count rows: 0, 1, 2, ... or 1, 2, 3, ..."""
    values = [_number(c) for c in cells]
    return bool(values) and all(v is not None for v in values) and values in (list(map(float, range(len(values)))), list(map(float, range(1, len(values) + 1))))


def default_label(header: list[str] | None, columns: list[list[str]]) -> int:
    """The label column when none is given: one named label/target/class/y, else the first column
    that is not an identifier (else the first column). (A table then takes its last column instead.)"""
    if header is not None and named_label(header) is not None:
        return named_label(header)
    for j, cells in enumerate(columns):
        if not is_identifier(None if header is None else header[j], cells):
            return j
    return 0


def positional_names(names: list[str]) -> bool:
    """Whether header names are an ordered run of positions: the same text around numbers that increase."""
    if not names:
        return True
    if len(names) == 1:
        return _number(names[0]) is not None
    prefix = _common_prefix(names)
    prefix = prefix.rstrip("0123456789.-+")  # digits belong to the numbers, not to the shared text
    suffix = _common_prefix([n[len(prefix):][::-1] for n in names])[::-1]
    suffix = suffix.lstrip("0123456789.")
    cores = [n[len(prefix) : len(n) - len(suffix)] for n in names]
    values = [_number(c) for c in cores]
    if any(v is None for v in values):
        return False
    return all(b > a for a, b in zip(values, values[1:]))


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    k = 0
    while k < min(len(first), len(last)) and first[k] == last[k]:
        k += 1
    return first[:k]


def is_categorical_column(cells: list[str]) -> bool:
    """At least half of the present cells are text (a few stray words among numbers are mistakes, see check_column)."""
    present = [c for c in cells if not is_missing(c)]
    return bool(present) and 2 * sum(_number(c) is None for c in present) >= len(present)


def table_reasons(header: list[str] | None, columns: list[list[str]]) -> list[str]:
    """Why these feature columns are a table (empty: they read as series), by the module's rule:
    a header decides by its names; without one, a categorical column makes a table."""
    categorical = sum(is_categorical_column(cells) for cells in columns)
    missing = sum(is_missing(c) for cells in columns for c in cells)
    extra = ([f"{categorical} categorical"] if categorical else []) + ([f"{missing} missing value{'s' if missing != 1 else ''}"] if missing else [])
    if header is not None:
        return [] if positional_names(header) else ["named columns", *extra]
    return extra if categorical else []


def check_column(name: str, cells: list[str], lines: list[int], path: str) -> None:
    """A column is numbers (with gaps) or categories; a few words among numbers are a mistake to name."""
    from ..errors import UserError

    if is_numeric_column(cells) or is_categorical_column(cells) or all(is_missing(c) for c in cells):
        return
    i = next(i for i, c in enumerate(cells) if not is_missing(c) and _number(c) is None)
    raise UserError(
        f"'{path}' row {lines[i]}, column '{name}' holds '{cells[i]}' among numbers; a table column holds numbers or categories: "
        f"fix the cell, or leave it empty (read as missing)"
    )


# -- the encoding ------------------------------------------------------------------------------------
def fit_encoding(names: list[str], columns: list[list[str]], train: np.ndarray) -> list[dict]:
    """One entry per feature column, fitted on the rows `train` only (JSON-serialisable)."""
    features = []
    for name, cells in zip(names, columns):
        seen = [cells[i] for i in train]
        if not is_categorical_column(cells):
            values = np.array([v for v in (_number(c) for c in seen if not is_missing(c)) if v is not None], dtype=np.float64)
            median = float(np.median(values)) if values.size else 0.0
            filled = np.array([median if _number(c) is None else _number(c) for c in seen], dtype=np.float64)
            std = float(filled.std()) if filled.size else 1.0
            features.append({
                "name": name,
                "type": "numeric",
                "median": median,
                "mean": float(filled.mean()) if filled.size else 0.0,
                "std": std if std > 1e-12 else 1.0,
                "indicator": any(is_missing(c) for c in seen),
            })
        else:
            counts = Counter(c for c in seen if not is_missing(c))
            ranked = sorted(counts, key=lambda c: (-counts[c], c))
            features.append({"name": name, "type": "categorical", "categories": ranked[:MAX_CATEGORIES]})
    return features


def feature_names(features: list[dict]) -> list[str]:
    """The encoded columns' names, in the model's input order."""
    out = []
    for f in features:
        if f["type"] == "numeric":
            out += [f["name"]] + ([f"{f['name']} missing"] if f["indicator"] else [])
        else:
            out += [f"{f['name']}={c}" for c in f["categories"]]
    return out


def encode(features: list[dict], columns: list[list[str]]) -> np.ndarray:
    """Feature columns (cells as text) -> (N, F) float32 in the order of `feature_names`.
    Never fails on a value: a missing or unparsable number is imputed, an unseen category is zeros."""
    n = len(columns[0]) if columns else 0
    blocks = []
    for f, cells in zip(features, columns):
        if f["type"] == "numeric":
            parsed = [None if is_missing(c) else _number(c) for c in cells]
            gap = np.array([v is None for v in parsed])
            values = np.array([f["median"] if v is None else v for v in parsed], dtype=np.float64)
            blocks.append(((values - f["mean"]) / f["std"])[:, None])  # (N, 1)
            if f["indicator"]:
                blocks.append(gap.astype(np.float64)[:, None])  # (N, 1)
        else:
            index = {c: k for k, c in enumerate(f["categories"])}
            onehot = np.zeros((n, len(f["categories"])))
            for i, c in enumerate(cells):
                k = index.get(c)
                if k is not None:
                    onehot[i, k] = 1.0
            blocks.append(onehot)  # (N, K)
    return np.concatenate(blocks, axis=1).astype(np.float32) if blocks else np.zeros((n, 0), np.float32)


def _blocks(features: list[dict]):
    """(feature, first encoded column, encoded columns) per feature column."""
    at = 0
    for f in features:
        width = (1 + f["indicator"]) if f["type"] == "numeric" else len(f["categories"])
        yield f, at, width
        at += width


def native_columns(features: list[dict], x: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """Encoded rows (N, F) -> one column per feature as gradient boosting takes them natively:
    numbers (standardised; NaN where missing), categories as codes 0..K-1 (NaN when missing or unseen),
    and which columns are categorical."""
    out, categorical = [], []
    for f, at, width in _blocks(features):
        if f["type"] == "numeric":
            col = x[:, at].astype(np.float64)
            if f["indicator"]:
                col = np.where(x[:, at + 1] > 0.5, np.nan, col)
        else:
            block = x[:, at : at + width]
            col = np.where(block.sum(1) > 0.5, block.argmax(1), np.nan) if width else np.full(len(x), np.nan)
        out.append(col)
        categorical.append(f["type"] == "categorical")
    return np.stack(out, axis=1) if out else np.zeros((len(x), 0)), categorical


def decode_row(features: list[dict], row: np.ndarray) -> list[str]:
    """One encoded row back as the file's values (for the report): numbers un-standardised, the category."""
    cells = []
    for f, at, width in _blocks(features):
        if f["type"] == "numeric":
            if f["indicator"] and row[at + 1] > 0.5:
                cells.append("(missing)")
            else:
                cells.append(f"{row[at] * f['std'] + f['mean']:.4g}")
        else:
            block = row[at : at + width]
            cells.append(f["categories"][int(block.argmax())] if width and block.max() > 0.5 else "(missing or unseen)")
    return cells

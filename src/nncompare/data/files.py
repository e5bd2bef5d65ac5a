"""The user's own files, given by path: `nncompare compare path/to/data.csv`.

Three kinds of input, chosen by what the path is:
- a folder with one subfolder of images per class (PNG, JPEG, BMP, GIF) -> an `image` data set;
- a `.csv` (or `.tsv`) with one series per row and one column of labels -> a `series` data set, or,
  when its columns are named features (data/tables.py has the rule), a `table` data set, or, with
  one row per time step grouped by a repeating identifier (data/longform.py), a `series` data set;
- a `.npz` with arrays `X` (N, L) or (N, L, C) and `y` (N,) -> a `series` data set.
- a file of the UCR/UEA archive (`.ts`, `.arff`, the text format), alone or as a TRAIN/TEST pair ->
  a `series` data set (data/archive.py).

Every input gets the same fixed, seeded, stratified split (test 20%, then validation 20% of the
rest), so every model and every run sees the same examples. A bad file is a `UserError` naming the
file and, where it applies, the row, column or value, and saying what would be right; no csv, NumPy
or Pillow exception escapes. NPZ files are read with `allow_pickle=False`: never pickle.
"""

from __future__ import annotations

import csv
import io
import math
import os
import struct
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..limits import check_fits
from .base import Dataset
from .userdata import (  # znormalise and _is_number are also read from here (inputs.py, active.py, tests)
    _check_sizes,
    _classes_or_values,
    _is_number,
    check_task,
    _series_dataset,
    _split_dataset,
    _split_indices,
    predicted,
    znormalise,
)
from .registry import register_paths

MAX_IMAGE_SIDE = 64  # larger images are shrunk to this long side: small, quick models
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TABLE_EXTENSIONS = (".csv", ".tsv")
ARCHIVE_EXTENSIONS = (".ts", ".arff")  # the UCR/UEA archive's own file formats (data/archive.py)
PATH_EXTENSIONS = TABLE_EXTENSIONS + (".npz", ".txt") + ARCHIVE_EXTENSIONS  # a source ending so is a path, not a data set name
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F")
SUPPORTED = (
    "a folder with one subfolder of images per class (PNG, JPEG, BMP, GIF), "
    "a .csv of series (one per row, one label column), a .npz with arrays X and y, "
    "or a UCR/UEA archive file (.ts, .arff)"
)


# -- dispatch -------------------------------------------------------------------------------------------
def looks_like_path(source: str) -> bool:
    """True when `source` names a file or folder rather than a data set: it exists, ends with a data
    file extension, or holds a path separator. Plain words stay data set names, so a typo of a
    built-in name still gets the "did you mean" error."""
    separators = [s for s in (os.sep, os.altsep, "/") if s]
    return (
        _expand(source).exists()
        or source.lower().endswith(PATH_EXTENSIONS)
        or any(s in source for s in separators)
    )


def _expand(path: str) -> Path:
    """`~` and `~user` expanded where a home folder is known; otherwise the path as written."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # no home folder to expand to: the path stays as the user wrote it
        return Path(path)


def load_path(path: str, *, label_column=None, normalize: bool = True, kind: str | None = None, drop_columns=None, task: str | None = None) -> Dataset:
    """Load the user's file or folder at `path` (see the module docstring for the kinds).

    `label_column` (CSV only): the header name or 0-based index of the label column, as str or int;
    default a column named label/target/class/y, else the first column that is not an identifier.
    `normalize` (CSV/NPZ series): z-normalise each series per channel; images are always scaled to [0, 1].
    `kind` (CSV only): "table", "series" (one per row) or "long" (one row per time step) overrides the
    rules that tell them apart (data/longform.py, data/tables.py).
    `drop_columns` (CSV only): column names or 0-based indexes (a list, or one comma-separated string)
    never read as a label, a feature or a series value.
    `task` (CSV and NPZ only): "classify" or "regress" reads the label as classes or as a quantity,
    overriding the rule that tells them apart (data/userdata.py `_as_quantity`).
    """
    check_task(task)
    if not isinstance(normalize, bool):
        raise UserError(f"normalize must be True or False, got {normalize!r}")
    if kind is not None and kind not in CSV_KINDS:
        raise UserError(f"kind must be one of {', '.join(CSV_KINDS)} (how a CSV is read), got {kind!r}")
    drop_columns = _drop_list(drop_columns)
    p = _expand(path)
    if not p.exists():
        raise UserError(f"no such file or folder '{path}'; give the path of {SUPPORTED} (relative paths start in '{Path.cwd()}')")
    suffix = p.suffix.lower()
    if task is not None and (p.is_dir() or suffix not in (*TABLE_EXTENSIONS, ".npz") or _archive_file(p, suffix, kind, label_column, drop_columns)):
        raise UserError(f"task applies to a .csv or .npz file, whose label may be classes or a quantity; '{path}' is not one (an archive .ts file says so in its header: @targetLabel true is regression); leave `task` out")
    if suffix not in TABLE_EXTENSIONS:
        _csv_only(path, kind=None if (kind == "series" and suffix == ".npz") else kind, drop_columns=drop_columns)
    if p.is_dir():
        from .archive import load_archive_file, pair_in_folder

        _no_label_column(label_column, path)
        train = pair_in_folder(p)  # a folder as the archive's download unpacks a set
        return _load_image_folder(p, path) if train is None else load_archive_file(train, str(train), normalize)
    if p.stat().st_size == 0:
        raise UserError(f"'{path}' is empty; expected {SUPPORTED}")
    if suffix == ".npz":
        _no_label_column(label_column, path)
        return _load_npz(p, path, normalize, task)
    if _archive_file(p, suffix, kind, label_column, drop_columns):
        from .archive import load_archive_file

        _no_label_column(label_column, path)
        return load_archive_file(p, path, normalize)
    if suffix in TABLE_EXTENSIONS:
        return _load_csv(p, path, label_column, normalize, kind, drop_columns, task)
    if suffix == ".txt":
        _no_label_column(label_column, path)
        from .text import read_text, text_dataset

        return text_dataset(read_text(path), path, path)  # character-level, as text:FILE
    raise UserError(f"'{path}' has an unsupported extension '{p.suffix or '(none)'}'; supported: {SUPPORTED}")


def _archive_file(p: Path, suffix: str, kind, label_column, drop_columns) -> bool:
    """Whether `p` is a file of the UCR/UEA archive (data/archive.py): a .ts or .arff file; a .txt file,
    or one without an extension, in the archive's text format (numbers only, the label first); a .csv
    or .tsv in that format with its TRAIN/TEST partner beside it, unless CSV options were given."""
    from .archive import AEON_EXTENSIONS, archive_pair, text_format

    if suffix in AEON_EXTENSIONS:
        return True
    if suffix in (".txt", ""):
        return text_format(p)
    if suffix in TABLE_EXTENSIONS and kind is None and label_column is None and not drop_columns:
        pair = archive_pair(p)
        return pair is not None and all(text_format(f) for f in pair)
    return False


CSV_KINDS = ("table", "series", "long")  # how a CSV may be read (kind=, --as): data/tables.py, data/longform.py


def _drop_list(drop_columns) -> list:
    """drop_columns as a list of names / indexes: None, "a,b", ["a", 3]."""
    if drop_columns is None:
        return []
    if isinstance(drop_columns, str):
        drop_columns = [c.strip() for c in drop_columns.split(",") if c.strip()]
    if isinstance(drop_columns, (int, np.integer)) and not isinstance(drop_columns, bool):
        drop_columns = [drop_columns]
    if not isinstance(drop_columns, (list, tuple)) or any(isinstance(c, bool) or not isinstance(c, (str, int, np.integer)) for c in drop_columns):
        raise UserError(f"drop_columns must be column names or 0-based indexes, such as 'id,notes' or ['id', 3], got {drop_columns!r}")
    return [c if isinstance(c, str) else int(c) for c in drop_columns]


def _csv_only(path: str, **options) -> None:
    """kind and drop_columns only mean something for a CSV; silently ignoring them would hide a mistake."""
    for name, value in options.items():
        if value:
            raise UserError(f"`{name}` applies to a .csv file and '{path}' is not one; leave it out")


def _no_label_column(label_column, path: str) -> None:
    """A label column only means something in a CSV; silently ignoring it would hide a mistake."""
    if label_column is not None:
        raise UserError(f"a label column is only read from a .csv file and '{path}' is not one; leave `label_column` out")


# -- CSV -------------------------------------------------------------------------------------------------
def _delimiter(first_line: str, suffix: str) -> str:
    """Comma for .csv, tab for .tsv; a .csv whose first line has no comma but tabs or semicolons
    (a common spreadsheet export) is read with those."""
    if suffix == ".tsv":
        return "\t"
    if "," not in first_line:
        for candidate in ("\t", ";"):
            if candidate in first_line:
                return candidate
    return ","


CSV_BYTES_PER_CELL = 100  # a cell held as a str in a list (about 60 bytes), then as floats, then normalised


def _check_csv_memory(p: Path, path: str) -> None:
    """Refuse a table that would not fit in memory, estimated before it is read: the cells per byte
    of its first megabyte, times its size, times what a cell costs while it is parsed."""
    size = p.stat().st_size
    with open(p, "rb") as f:  # a sample only; the whole file is read below, once it is known to fit
        head = f.read(1 << 20)
    cells_per_byte = max(sum(head.count(c) for c in (b",", b";", b"\t", b"\n")) / max(len(head), 1), 1e-3)
    check_fits(size * cells_per_byte * CSV_BYTES_PER_CELL, f"'{path}' ({size:,} bytes)", "use a smaller file, or fewer or shorter series")


def _read_rows(p: Path, path: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of the file as (line number as an editor shows it, stripped cells)."""
    _check_csv_memory(p, path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"'{path}' is not UTF-8 text; save it as a UTF-8 CSV file") from None
    except OSError as e:
        raise UserError(f"cannot read '{path}' ({e.strerror or e})") from None
    empty = UserError(f"'{path}' is empty; expected one series per row: a label and the values, separated by commas")
    if not text.strip():
        raise empty
    first_line = text.lstrip().splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line, p.suffix.lower()))
    rows = []
    try:
        for cells in reader:
            cells = [c.strip() for c in cells]
            if any(cells):  # blank lines (and rows of empty cells) are layout, not data
                rows.append((reader.line_num, cells))
    except csv.Error as e:
        raise UserError(f"'{path}' row {reader.line_num} is not valid CSV ({e}); expected plain comma-separated values") from None
    if not rows:  # only delimiters and blank lines
        raise empty
    return rows


def _drop_trailing_delimiter(rows: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """Some exports end every line with a delimiter: a last column empty in every row is no column."""
    if all(len(cells) > 1 and cells[-1] == "" for _, cells in rows):
        return [(line, cells[:-1]) for line, cells in rows]
    return rows


def _check_ragged(rows: list[tuple[int, list[str]]], path: str) -> None:
    """Every row has as many cells as the first: one series per row, all of one length."""
    width = len(rows[0][1])
    for line, cells in rows:
        if len(cells) != width:
            raise UserError(
                f"'{path}' row {line} has {len(cells)} cells but row {rows[0][0]} has {width}; every row needs the same "
                f"number of cells (the label and the series values): pad or trim row {line}"
            )


def _column_list(header: list[str] | None, width: int) -> str:
    """The available columns for an error message: names when there is a header, the index range always."""
    index_range = f"0-based indexes 0 to {width - 1}"
    if header is None:
        return f"the file has no header row, so give the label column by one of its {index_range}"
    names = ", ".join(f"'{h}'" for h in header[:10]) + (f" and {width - 10} more" if width > 10 else "")
    return f"its columns are {names}; or give one of its {index_range}"


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """Whether the first row is a header when the label column is unknown (a name that is not in it):
    some column is text in the first row but a number below it; with one row, text in two cells."""
    if second is None:
        return sum(bool(c) and not _is_number(c) for c in first) > 1
    return any(a and not _is_number(a) and _is_number(b) for a, b in zip(first, second))


def _label_index(label_column, first: list[str], second: list[str] | None, path: str) -> tuple[int, bool]:
    """(index of the label column, whether the first row is a header).

    A header is detected when the first row has a non-numeric, non-empty cell outside the label
    column; a column given by name makes the first row a header by definition.
    """
    width = len(first)
    if label_column is None:
        index = 0
    elif isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer, str)):
        raise UserError(f"label_column must be a column name or a 0-based index, got {label_column!r}")
    elif isinstance(label_column, str) and not label_column.strip().isdecimal():
        name = label_column.strip()
        if name in first:
            return first.index(name), True
        header = first if _looks_like_header(first, second) else None
        raise UserError(f"'{path}' has no column '{name}'; {_column_list(header, width)}")
    else:
        index = int(label_column)
    if not 0 <= index < width:
        header = first if _looks_like_header(first, second) else None
        raise UserError(f"'{path}' has no column {index} (label_column); {_column_list(header, width)}")
    return index, any(c and not _is_number(c) for j, c in enumerate(first) if j != index)  # an empty cell names nothing


def _to_floats(cells: list[list[str]], lines: list[int], columns: list[int], header: list[str] | None, path: str) -> np.ndarray:
    """(N, L) cell strings -> (N, L) float64; the first non-numeric cell is named by row, column and value."""
    try:
        return np.array(cells, dtype=str).astype(np.float64)  # fast path: numpy parses every cell at once
    except ValueError:
        pass
    out = np.empty((len(cells), len(cells[0])), dtype=np.float64)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            try:
                out[i, j] = float(cell)
            except ValueError:
                what = "is empty" if cell == "" else f"holds '{cell}', which is not a number"
                raise UserError(
                    f"'{path}' row {lines[i]}, {_column_name(columns[j], header)} {what}; every cell outside the label column must be a number"
                ) from None
    return out


def _column_name(index: int, header: list[str] | None) -> str:
    """A column as the user knows it: by header name, else by position (1-based, with the 0-based index)."""
    if header is not None:
        return f"column '{header[index]}'"
    return f"column {index + 1} (0-based index {index})"


def _check_finite(values: np.ndarray, lines: list[int], columns: list[int], header: list[str] | None, path: str) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, j = (int(k) for k in bad[0])
        raise UserError(
            f"'{path}' row {lines[i]}, {_column_name(columns[j], header)} is {values[i, j]}; "
            f"every value must be a finite number: fill in or drop missing values (or `kind='table'` reads the columns as features, gaps imputed)"
        )


def _load_csv(p: Path, path: str, label_column, normalize: bool, kind: str | None = None, drop_columns: list | None = None, task: str | None = None) -> Dataset:
    """A series per row (a label cell and L value cells -> x (N, L, 1)) or a table of named features
    (data/tables.py says which); identifier columns and `drop_columns` are set aside first."""
    from . import longform, tables

    rows = _drop_trailing_delimiter(_read_rows(p, path))
    _check_ragged(rows, path)
    first = rows[0][1]
    width = len(first)
    if width < 2:
        raise UserError(f"'{path}' has only one column; each row needs a label and at least one value, separated by commas")
    second = rows[1][1] if len(rows) > 1 else None
    if label_column is not None:
        label_at, has_header = _label_index(label_column, first, second, path)
    else:
        has_header = _header_row(first, rows)
        label_at = None
    header = first if has_header else None
    data = rows[1:] if has_header else rows
    if not data:
        raise UserError(f"'{path}' has a header row but no data rows; expected one series per row below the header")
    lines = [line for line, _ in data]
    by_column = [[cells[j] for _, cells in data] for j in range(width)]
    dropped = _drop_indexes(drop_columns, header, width, path)
    kept = [j for j in range(width) if j not in dropped]
    named_label = header is not None and label_column is None and tables.named_label(header) is not None
    if kind in (None, "long"):
        longform.refuse_stacked(path, header, by_column, [j for j in kept if j != label_at])
    if kind == "long" or (kind is None and longform.looks_long(header, by_column, kept, label_at)):
        return longform.load_long(path, header, by_column, lines, kept, label_at, normalize, dropped, width, asked=kind == "long", task=task)
    if label_at is None:
        label_at = kept[tables.default_label(None if header is None else [header[j] for j in kept], [by_column[j] for j in kept])] if kept else 0
    if label_at in dropped:
        raise UserError(f"'{path}': {_column_name(label_at, header)} is the label column and cannot be dropped; leave it out of `drop_columns` or choose another label column")

    def split_columns(label: int) -> tuple[list[int], list[int]]:
        """(identifier columns, value columns) around the label column; value k is file column columns[k]."""
        ids = [j for j in kept if j != label and tables.is_identifier(None if header is None else header[j], by_column[j])]
        return ids, [j for j in kept if j != label and j not in ids]

    ids, columns = split_columns(label_at)
    reasons = tables.table_reasons(None if header is None else [header[j] for j in columns], [by_column[j] for j in columns])
    read_as = kind or ("table" if reasons else "series")
    if read_as == "table" and label_column is None and not named_label:
        # a table's label is its last column by default (scikit-learn's and UCI's files put it there)
        label_at = [j for j in kept if j not in ids][-1]
        ids, columns = split_columns(label_at)
        reasons = tables.table_reasons(None if header is None else [header[j] for j in columns], [by_column[j] for j in columns])
    if not columns:
        raise UserError(f"'{path}' has no value columns left besides the label, identifier and dropped columns; keep at least one")
    labels = [cells[label_at] for _, cells in data]
    for line, label in zip(lines, labels):
        if label == "":
            raise UserError(f"'{path}' row {line} has no label in {_column_name(label_at, header)}; every row needs a label")
    notes = []
    if ids:
        named = ", ".join(_column_name(j, header) for j in ids)
        notes.append(f"{path}: {named} set aside as an identifier (all values distinct or an id name), not read as {'a feature' if len(ids) == 1 else 'features'}; predict keeps it in its CSV")
    record = {
        "header": header,
        "label": header[label_at] if header is not None else label_at,
        "ids": [header[j] if header is not None else j for j in ids],
        "dropped": [header[j] if header is not None else j for j in sorted(dropped)],
        "width": width,
    }
    what = "rows" if read_as == "table" else "series"
    y, class_names = _classes_or_values(np.array(labels, dtype=str), lambda i: f"'{path}' row {lines[i]}", path, f"the label column '{record['label']}'", what, task=task)
    if read_as == "table":
        return _table_dataset(path, header, columns, by_column, lines, y, class_names, reasons if kind is None else None, notes, record)
    values = _to_floats([[cells[j] for j in columns] for _, cells in data], lines, columns, header, path)  # (N, L)
    _check_finite(values, lines, columns, header, path)
    return _series_dataset(values[:, :, None], y, class_names, path, "CSV", normalize, {"columns": record, "notes": notes})  # (N, L) -> (N, L, C=1)


def _header_row(first: list[str], rows: list[tuple[int, list[str]]]) -> bool:
    """Whether the first row names the columns, with the label column not known yet: a cell of text
    outside the first column (the label's place by default), unless every such cell recurs in its
    column below, as the categories of a table without a header do."""
    text = [j for j, c in enumerate(first) if j > 0 and c and not _is_number(c)]
    if not text:
        return False
    return not all(any(len(cells) > j and cells[j] == first[j] for _, cells in rows[1:]) for j in text)


def _drop_indexes(drop_columns, header: list[str] | None, width: int, path: str) -> set[int]:
    """The file columns `drop_columns` names (header names or 0-based indexes)."""
    out = set()
    for c in drop_columns or []:
        if isinstance(c, str) and not c.strip().isdecimal():
            if header is None or c.strip() not in header:
                raise UserError(f"'{path}' has no column '{c}' to drop; {_column_list(header, width)}")
            out.add(header.index(c.strip()))
        else:
            if not 0 <= int(c) < width:
                raise UserError(f"'{path}' has no column {int(c)} to drop; {_column_list(header, width)}")
            out.add(int(c))
    return out


def _table_dataset(path, header, columns, by_column, lines, y, class_names, reasons, notes, record) -> Dataset:
    """Feature columns -> encoded (N, F) rows; the encoding is fitted on the training split only."""
    from . import tables

    names = [header[j] if header is not None else f"column {j + 1}" for j in columns]
    cells = [by_column[j] for j in columns]
    for name, col in zip(names, cells):
        tables.check_column(name, col, lines, path)
    train, val, test = _split_indices(y)
    features = tables.fit_encoding(names, cells, train)
    x = tables.encode(features, cells)  # (N, F)
    n_categorical = sum(f["type"] == "categorical" for f in features)
    named = "named feature columns" if header is not None else "feature columns"
    why = f" ({', '.join(reasons)})" if reasons else " (as asked)"
    label = f"label column '{record['label']}'" if header is not None else f"label column {record['label']} (0-based)"
    notes = [f"{path}: {len(features)} {named} ({n_categorical} categorical) and {label}, read as a table, not as series{why}; --as series reads rows as series", *notes]
    record = {**record, "features": features, "feature_columns": columns, "encoded": tables.feature_names(features)}
    missing = sum(tables.is_missing(c) for col in cells for c in col)
    return _split_dataset(
        x,
        y,
        {
            "name": path,
            "kind": "table",
            "n_classes": len(class_names),
            "class_names": class_names,
            "description": (
                f"table '{path}': {len(y)} rows of {len(features)} feature columns ({n_categorical} categorical, {missing} missing values) "
                f"encoded as {x.shape[1]} numbers (standardised, one-hot, missing indicators; fitted on the training split), {predicted(class_names)}"
            ),
            "reference": f"the user's file '{path}'",
            "columns": record,
            "notes": notes,
        },
        (train, val, test),
    )


# -- NPZ -------------------------------------------------------------------------------------------------
# what numpy and zipfile raise on a damaged .npz: RuntimeError covers encrypted members and unknown
# compression (NotImplementedError); MemoryError a header that claims an absurd shape
NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, MemoryError, struct.error, zipfile.BadZipFile, zlib.error)


def _read_npz(p: Path, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Arrays X and y from the file, never unpickling anything."""
    try:
        f = np.load(p, allow_pickle=False)
    except NPZ_ERRORS as e:
        raise _npz_error(e, path) from None
    if not isinstance(f, np.lib.npyio.NpzFile):  # a bare array: the file is in .npy format
        raise UserError(f"'{path}' holds a single array (.npy format); save X and y together with np.savez('{p.name}', X=X, y=y)")
    try:
        missing = [k for k in ("X", "y") if k not in f.files]
        if missing:
            found = ", ".join(f.files) or "none"
            raise UserError(f"'{path}' has no array {' or '.join(missing)} (arrays found: {found}); save it with np.savez(file, X=X, y=y)")
        _check_npz_memory(p, path)
        x, y = f["X"], f["y"]  # each array is read (and decompressed) here
    except NPZ_ERRORS as e:
        raise _npz_error(e, path) from None
    finally:
        f.close()
    for name, a in (("X", x), ("y", y)):
        if not isinstance(a, np.ndarray):  # numpy hands back the raw bytes of a member that is no .npy array
            raise UserError(f"'{path}': member {name} is not a NumPy array; save the file with np.savez(file, X=X, y=y)")
    return x, y


def _npy_header(z: zipfile.ZipFile, member: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from a .npz member's .npy header, without reading its data."""
    with z.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    return shape, dtype


def _check_npz_memory(p: Path, path: str) -> None:
    """Refuse arrays that would not fit in memory, from their headers: an .npz of a few kilobytes can
    declare (or decompress to) gigabytes. X is held as float64 a few times over while it is normalised."""
    needed = 0
    with zipfile.ZipFile(p) as z:
        members = set(z.namelist())
        for name in ("X", "y"):
            shape, dtype = _npy_header(z, f"{name}.npy" if f"{name}.npy" in members else name)
            values = math.prod(shape)
            needed += values * (8 * 5 if name == "X" else max(dtype.itemsize, 8) * 3)
    check_fits(needed, f"'{path}'", "use a smaller file, or fewer or shorter series")


def _npz_error(e: Exception, path: str) -> UserError:
    """NumPy's and zipfile's exception for a bad .npz, as a one-line UserError."""
    if "pickle" in str(e):
        return UserError(f"'{path}' stores Python objects, which are never unpickled; save X as numbers and y as numbers or strings")
    return UserError(f"cannot read '{path}' as a .npz file ({type(e).__name__}: {e}); save it with np.savez(file, X=X, y=y)")


def _check_npz_arrays(x: np.ndarray, y: np.ndarray, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Shapes and dtypes: X (N, L) or (N, L, C) numbers, y (N,) numbers or strings; returns X as (N, L, C)."""
    if x.dtype.kind not in "biuf":
        raise UserError(f"'{path}': X holds {x.dtype} values; expected numbers (float or int)")
    if x.ndim == 2:
        x = x[:, :, None]  # (N, L) -> (N, L, C=1)
    if x.ndim != 3:
        raise UserError(f"'{path}': X has shape {x.shape} ({x.ndim} dimensions); expected (N, L) or (N, L, C): N series of L steps with C channels")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # (N, 1) -> (N,): a column vector of labels is still one label per series
    if y.ndim != 1:
        raise UserError(f"'{path}': y has shape {y.shape}; expected (N,), one label per series")
    if y.dtype.kind not in "biufUS":
        raise UserError(f"'{path}': y holds {y.dtype} values; expected numbers or strings")
    if len(x) != len(y):
        raise UserError(f"'{path}': X has {len(x)} series but y has {len(y)} labels; expected one label per series")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise UserError(f"'{path}': X has shape {x.shape}, with no values per series; expected at least one step and one channel")
    if y.dtype.kind == "S":
        y = np.char.decode(y, "utf-8", errors="replace")  # bytes labels -> str
    return x, y


def _load_npz(p: Path, path: str, normalize: bool, task: str | None = None) -> Dataset:
    x, y = _check_npz_arrays(*_read_npz(p, path), path)
    x = x.astype(np.float64)
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        i, t, c = (int(k) for k in bad[0])
        raise UserError(f"'{path}': X[{i}, {t}, {c}] (series {i}, step {t}, channel {c}) is {x[i, t, c]}; every value must be a finite number")
    y, class_names = _classes_or_values(y, lambda i: f"'{path}': y[{i}]", path, "the label array y", "series", "store class labels in y", task=task)
    return _series_dataset(x, y, class_names, path, "NPZ", normalize)


# -- image folder ------------------------------------------------------------------------------------------
def _entries(folder: Path) -> list[Path]:
    """The folder's entries; a folder the user cannot read is a UserError naming it."""
    try:
        return list(folder.iterdir())
    except OSError as e:
        raise UserError(f"cannot read the folder '{folder}' ({e.strerror or e}); check that it exists and you may read it") from None


def _class_folders(folder: Path, path: str) -> list[tuple[str, list[Path]]]:
    """(class name, its image files), classes sorted by subfolder name; hidden entries and files that
    are not images (.txt, .DS_Store, ...) are skipped."""
    subfolders = sorted(d for d in _entries(folder) if d.is_dir() and not d.name.startswith("."))
    if not subfolders:
        raise UserError(f"'{path}' has no class subfolders; put each class's images in a subfolder named after the class, as in {path}/cat/1.png")
    classes = []
    for d in subfolders:
        images = sorted(f for f in _entries(d) if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS)
        classes.append((d.name, images))
    if not any(images for _, images in classes):
        raise UserError(f"'{path}' holds no images in its class subfolders; expected PNG, JPEG, BMP or GIF files, as in {path}/{subfolders[0].name}/1.png")
    for name, images in classes:
        if not images:
            raise UserError(f"class folder '{folder / name}' holds no images; add PNG, JPEG, BMP or GIF files or remove the folder")
    return classes


def _unreadable(file: Path, e: Exception) -> UserError:
    return UserError(f"cannot read the image '{file}' ({type(e).__name__}: {e}); replace or remove the file")


def _image_size(file: Path) -> tuple[int, int]:
    """(width, height) from the image's header, without decoding its pixels."""
    from PIL import Image

    try:
        with Image.open(file) as img:
            return img.size
    except Exception as e:  # noqa: BLE001 - Pillow's format plugins fail with many exception types on a corrupt file
        raise _unreadable(file, e) from None


def _target_size(files: list[Path]) -> tuple[int, int]:
    """(width, height): the most common size among the images, shrunk to fit MAX_IMAGE_SIDE on the long side."""
    (w, h), _ = Counter(_image_size(f) for f in files).most_common(1)[0]
    if max(w, h) > MAX_IMAGE_SIDE:
        scale = MAX_IMAGE_SIDE / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    return w, h


def _grey_8bit(img):
    """A grey image as 8-bit "L". Pillow's convert("L") clips 16-bit pixels (a 16-bit PNG opens as
    "I;16" or "I") at 255, which would turn most of the image white: scale them down instead."""
    from PIL import Image

    if img.mode == "I" or img.mode.startswith("I;16"):
        pixels = np.asarray(img, dtype=np.float64) / 65535.0  # (H, W) in [0, 1]
        return Image.fromarray(np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8))  # uint8 (H, W) -> mode "L"
    return img.convert("L")


def _decode(file: Path, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """One image -> ((H, W) or (H, W, 3) uint8 pixels at `size`, whether its mode is a grey one)."""
    from PIL import Image

    import warnings

    try:
        with Image.open(file) as img, warnings.catch_warnings():
            # a palette with transparency warns on conversion; the pixels are what is wanted here
            warnings.simplefilter("ignore", UserWarning)
            img.load()  # decode now: a truncated or corrupt file fails here
            grey = img.mode in GREY_MODES
            converted = _grey_8bit(img) if grey else img.convert("RGB")
            if converted.size != size:
                converted = converted.resize(size)
            return np.asarray(converted), grey
    except Exception as e:  # noqa: BLE001 - Pillow's decoders fail with many exception types on a corrupt file
        raise _unreadable(file, e) from None


def _image_pixels(file: Path, size: tuple[int, int]) -> np.ndarray:
    """One image -> (H, W, C) uint8 at `size`: C = 1 when it is grey (a grey mode, or R = G = B everywhere), else 3."""
    pixels, grey = _decode(file, size)
    if grey:
        return pixels[:, :, None]  # (H, W) -> (H, W, C=1)
    if (pixels[:, :, 0] == pixels[:, :, 1]).all() and (pixels[:, :, 1] == pixels[:, :, 2]).all():
        return pixels[:, :, :1]  # an RGB file of grey pixels: one channel carries it all
    return pixels


def _load_image_folder(folder: Path, path: str) -> Dataset:
    """One subfolder per class -> x (N, C, H, W) in [0, 1]; grey-scale if every image is grey, else RGB."""
    classes = _class_folders(folder, path)
    files = [f for _, images in classes for f in images]
    labels = np.array([k for k, (_, images) in enumerate(classes) for _ in images], dtype=np.int64)
    class_names = [name for name, _ in classes]
    _check_sizes(labels, class_names, path, "images")
    w, h = _target_size(files)
    # decoded images (up to 3 bytes a pixel), then float32 (N, C, H, W) and its transposed copy
    check_fits(len(files) * w * h * 3 * 9, f"the {len(files)} images of '{path}' at {w} x {h}", "use fewer images")
    images = [_image_pixels(f, (w, h)) for f in files]
    channels = 1 if all(a.shape[2] == 1 for a in images) else 3
    x = np.stack([np.broadcast_to(a, (h, w, channels)) for a in images])  # (N, H, W, C)
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (N, H, W, C) -> (N, C, H, W), pixels in [0, 1]
    colour = "grey-scale" if channels == 1 else "RGB"
    return _split_dataset(
        np.ascontiguousarray(x),
        labels,
        {
            "name": path,
            "kind": "image",
            "n_classes": len(class_names),
            "class_names": class_names,
            "description": f"image folder '{path}': {len(files)} {colour} images as {channels} x {h} x {w} (C x H x W), {len(class_names)} classes",
            "reference": f"the user's folder '{path}'",
        },
    )


register_paths(looks_like_path, load_path)

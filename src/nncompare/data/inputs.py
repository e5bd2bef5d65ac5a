"""New inputs for a trained run read from files, as the data loaders read them (data/files.py), with
the same per-example preprocessing as the run's training data. See predict.py for what each file holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

INPUT_KINDS = "a .npz with an array X, a .csv of series (one per row), a UCR/UEA .ts or .arff file, an image file or a folder of images"


# -- the preprocessing of the run's loader ---------------------------------------------------------
def normalises_series(config: dict) -> bool:
    """Whether the run's loader z-normalised each series on its own (an example-by-example transform
    that new inputs must get as well): the user's CSV/NPZ series and univariate UCR series, unless the
    run was trained with normalize=False; the archive's files given by path as UCR series. (Multivariate
    UCR series are standardised with the training split's statistics instead, which the run records in
    `meta.channel_scaling`, and the built-in sets are used as generated.)"""
    from .files import looks_like_path
    from .registry import list_families, list_sources

    meta = config.get("dataset_meta", {})
    if meta.get("kind") != "series" or config.get("data_options", {}).get("normalize", True) is False:
        return False
    source = str(config.get("dataset", ""))
    if source in {s.name for s in list_sources()}:
        return False
    prefix, colon, _ = source.partition(":")
    if colon and prefix in {f.name.split(":")[0] for f in list_families()}:
        return prefix == "ucr" and list(meta.get("input_shape", [0, 0]))[-1] == 1
    if not looks_like_path(source):
        return False
    if Path(source).suffix.lower() in (".ts", ".arff", ".txt", ""):  # the archive's own files or their folder (data/archive.py): as ucr:NAME
        return list(meta.get("input_shape", [0, 0]))[-1] == 1
    return source.lower().endswith((".csv", ".tsv", ".npz"))


def channel_scaling(run) -> dict:
    """The per-channel mean and std of the training split that a run on a multivariate UCR/UEA set
    (`ucr:NAME` or the archive's files by path) was standardised with, as new inputs need them: the run
    records them in `meta.channel_scaling`; a run stored before it did (2026-12-06) gets them by loading
    its data set again (the split is deterministic). Empty for every other run."""
    if run.meta.channel_scaling or not _standardises_channels(run.config):
        return run.meta.channel_scaling
    try:
        return run.dataset().meta.channel_scaling
    except UserError as e:
        raise UserError(
            "this run's multivariate series were standardised with its training split's channel statistics, which runs stored "
            f"before 2026-12-06 did not record, and its data set cannot be loaded again to recompute them ({e}); train the run again"
        ) from None


def _standardises_channels(config: dict) -> bool:
    """Whether the run's loader standardised the channels of multivariate archive series (data/ucr.py)."""
    from .files import looks_like_path

    meta = config.get("dataset_meta", {})
    if meta.get("kind") != "series" or config.get("data_options", {}).get("normalize", True) is False or list(meta.get("input_shape", [0, 1]))[-1] == 1:
        return False
    source = str(config.get("dataset", ""))
    if source.startswith("ucr:"):
        return True
    return looks_like_path(source) and Path(source).suffix.lower() in (".ts", ".arff", ".txt", "")


# -- files -------------------------------------------------------------------------------------------
def read_inputs(path: str, run, label_column=None) -> tuple[np.ndarray, list[str], list[str] | None]:
    """(inputs in the run's layout, a name per example, the true labels as text or None) from a file.
    A name is the example's identifier when the run's CSV had an identifier column and the file has it
    too, else its line number (CSV), its index (NPZ) or its file name (images)."""
    return read_named_inputs(path, run, label_column)[:3]


def read_named_inputs(path: str, run, label_column=None) -> tuple[np.ndarray, list[str], list[str] | None, str, np.ndarray | None]:
    """read_inputs, plus what the names are (the identifier column's name, or "input") and the real
    steps of each series when the run was trained on series of varying length and some of the new
    ones are shorter than its longest (zero-padded to it, as in training; else None)."""
    from .archive import text_format
    from .files import ARCHIVE_EXTENSIONS, IMAGE_EXTENSIONS, TABLE_EXTENSIONS, _expand, znormalise

    meta = run.meta
    if meta.kind == "table":
        p = _expand(str(path))
        if not p.exists():
            raise UserError(f"no such file or folder '{path}'; give a .csv with the columns this run was trained on")
        if p.is_dir() or p.suffix.lower() not in TABLE_EXTENSIONS:
            raise UserError(f"this run was trained on a table; give its new rows as a .csv with the same columns (not '{path}')")
        return (*_read_table_rows(p, path, meta, label_column), None)
    if meta.task == "per_step":
        raise UserError("'nncompare predict' writes one prediction per input; this run labels every position (per-position task), which it does not cover")
    p = _expand(str(path))
    if not p.exists():
        raise UserError(f"no such file or folder '{path}'; give {INPUT_KINDS}")
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in IMAGE_EXTENSIONS:
        if meta.kind != "image":
            raise UserError(f"'{path}' holds images but this run was trained on {meta.kind}; give {layout_text(meta)} as a .npz or .csv")
        if label_column is not None:
            raise UserError("a label column is only read from a .csv file; leave `label_column` out")
        return (*_read_images(p, path, meta), "input", None)
    lengths = None
    if suffix == ".npz":
        if label_column is not None:
            raise UserError("a label column is only read from a .csv file; leave `label_column` out")
        x, names, labels, lengths = _read_npz(p, path, meta)
    elif suffix in TABLE_EXTENSIONS:
        x, names, labels, name_header, lengths = _read_csv(p, path, meta, label_column)
    elif suffix in ARCHIVE_EXTENSIONS or (suffix in (".txt", "") and text_format(p)):
        if label_column is not None:
            raise UserError("a label column is only read from a .csv file; leave `label_column` out")
        x, names, labels, lengths = _read_archive(p, path, meta)
    else:
        raise UserError(f"'{path}' has an unsupported extension '{p.suffix or '(none)'}'; give {INPUT_KINDS}")
    if meta.kind == "series" and normalises_series(run.config):
        from .ucr import z_normalize

        x = x.reshape(len(x), *meta.input_shape)
        x = znormalise(x) if lengths is None else z_normalize(x, lengths).astype(np.float32)
    elif meta.kind == "series" and (scaling := channel_scaling(run)):  # multivariate archive series: the training split's statistics
        from .ucr import standardize_channels

        real = lengths if lengths is not None else np.full(len(x), meta.input_shape[0])
        x = standardize_channels(x.reshape(len(x), *meta.input_shape), real, np.asarray(scaling["mean"]), np.asarray(scaling["std"])).astype(np.float32)
    return x, names, labels, name_header if suffix in TABLE_EXTENSIONS else "input", lengths


def fit_to_run(series: list[np.ndarray], names: list[str], meta, path: str, unit: str = "steps") -> tuple[np.ndarray, np.ndarray | None]:
    """Series (each (l, C)) as the run's input (N, L, C) and their real steps. A run trained on series
    of varying length takes any length up to its longest, zero-padded at the end (lengths returned when
    some series are shorter); any other run takes its length only."""
    steps = meta.input_shape[0]
    for name, one in zip(names, series):
        if len(one) > steps or (len(one) < steps and not meta.varying_length):
            reads = f"series of at most {steps} steps (it was trained on series of varying length)" if meta.varying_length else f"series of {steps} steps"
            raise UserError(f"'{path}': series {name} has {len(one)} {unit}; this run reads {reads}")
    lengths = np.array([len(one) for one in series], dtype=np.int64)
    x = np.zeros((len(series), steps, meta.input_shape[1]), dtype=np.float32)
    for i, one in enumerate(series):
        x[i, : len(one)] = one
    return x, lengths if (lengths < steps).any() else None


def shorter_series(x, meta, lengths=None, where: str = "the inputs"):
    """(`x`, the real steps of each series or None) for a run on series: a run trained on series of
    varying length takes an array of fewer steps than its longest, zero-padded here to it (each series
    that long unless `lengths` says less), or series already padded with their `lengths`. `lengths` on
    a run of one length, or outside 1..the run's longest, is refused; anything else goes on to
    `as_model_input`, whose shape error names both shapes."""
    steps = meta.input_shape[0] if meta.kind == "series" else None
    if lengths is not None:
        if not meta.varying_length:
            raise UserError("this run was trained on series of one length, so it takes no `lengths`; give series of that length")
        lengths = np.asarray(lengths).reshape(-1)
        if lengths.dtype.kind not in "iu" or (lengths.size and (lengths.min() < 1 or lengths.max() > steps)):
            raise UserError(f"`lengths` must be whole numbers from 1 to {steps} (the run's longest series), one per series")
    if meta.varying_length and isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim in (2, 3) and 1 < x.shape[1] < steps:
        arr = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        if arr.ndim == 2 and meta.input_shape[1] == 1:
            arr = arr[..., None]  # (N, l) -> (N, l, 1)
        if arr.ndim == 3 and arr.shape[2] == meta.input_shape[1]:  # anything else is left to as_model_input's error
            if lengths is not None and lengths.size and lengths.max() > arr.shape[1]:
                raise UserError(f"`lengths` go up to {lengths.max()} steps but the series given have {arr.shape[1]}; give lengths of at most {arr.shape[1]}")
            x, padded = fit_to_run(list(arr), [str(i) for i in range(len(arr))], meta, where)
            lengths = lengths if lengths is not None else padded
    return x, lengths


def _set_aside(rows: list[tuple[int, list[str]]], meta) -> tuple[list[tuple[int, list[str]]], list[str] | None, str]:
    """Rows without the identifier and dropped columns the run's CSV had (found by header name), the
    identifier of each data row (None without one) and the identifier column's name."""
    cols = meta.columns or {}
    aside = [a for a in (*cols.get("ids", []), *cols.get("dropped", [])) if isinstance(a, str)]
    first = rows[0][1]
    at = [first.index(a) for a in aside if a in first]
    if not at:
        return rows, None, "input"
    id_name = next((a for a in cols.get("ids", []) if isinstance(a, str) and a in first), None)
    ids = [cells[first.index(id_name)] for _, cells in rows[1:]] if id_name is not None else None
    return [(line, [c for j, c in enumerate(cells) if j not in at]) for line, cells in rows], ids, id_name or "input"


def _read_table_rows(p: Path, path: str, meta, label_column) -> tuple[np.ndarray, list[str], list[str] | None, str]:
    """New rows of a table: the training file's feature columns (by header name, or by position when it
    had no header), encoded as in training; missing cells and unseen categories are fine."""
    from .files import _check_ragged, _drop_trailing_delimiter, _read_rows
    from .tables import encode

    cols = meta.columns
    features, header = cols["features"], cols.get("header")
    rows = _drop_trailing_delimiter(_read_rows(p, path))
    _check_ragged(rows, path)
    first = rows[0][1]
    name_header, ids = "input", None
    if header is not None:
        wanted = [f["name"] for f in features]
        missing = [n for n in wanted if n not in first]
        if missing:
            shown = ", ".join(f"'{n}'" for n in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise UserError(f"'{path}' has no column {shown}; this run reads rows with a header naming its columns: {', '.join(wanted)}")
        data = rows[1:]
        at = [first.index(n) for n in wanted]
        id_name = next((a for a in cols.get("ids", []) if a in first), None)
        if id_name is not None:
            ids, name_header = [cells[first.index(id_name)] for _, cells in data], id_name
        label_name = label_column if label_column is not None else cols.get("label")
        if isinstance(label_name, str) and not label_name.strip().isdecimal():
            label_at = first.index(label_name) if label_name in first else None
            if label_column is not None and label_at is None:
                raise UserError(f"'{path}' has no column '{label_name}' (`label_column`)")
        else:
            label_at = int(label_name) if label_column is not None else None
    else:  # no header in training: the same columns in the same places, with or without the label
        width, label_at = cols["width"], cols["label"]
        if len(first) not in (width, width - 1):
            raise UserError(f"'{path}' rows have {len(first)} cells; this run reads rows of {width} cells (or {width - 1} without the label) like its training file")
        at = list(cols["feature_columns"])
        if len(first) == width - 1:
            at, label_at = [j - (j > label_at) for j in at], None
        data = rows
    if not data:
        raise UserError(f"'{path}' has a header row but no data rows; expected one row per example")
    if label_at is not None and not 0 <= label_at < len(first):
        raise UserError(f"'{path}' has no column {label_at} (`label_column`)")
    x = encode(features, [[cells[j] for _, cells in data] for j in at])  # (N, F)
    labels = [cells[label_at] for _, cells in data] if label_at is not None else None
    names = ids if ids is not None else [str(line) for line, _ in data]
    return x, names, labels, name_header


def _read_npz(p: Path, path: str, meta) -> tuple[np.ndarray, list[str], list[str] | None, np.ndarray | None]:
    """(inputs, names, labels, the real steps of each series or None). For a run on series of varying
    length, X may have fewer steps than the run's longest (padded here), or be padded with an array
    `lengths` beside it, as `StoredRun.predict(x, lengths)` takes them."""
    from .files import NPZ_ERRORS, _npz_error

    try:
        with np.load(p, allow_pickle=False) as f:
            if not isinstance(f, np.lib.npyio.NpzFile) or "X" not in f.files:
                raise UserError(f"'{path}' has no array X; save the inputs with np.savez(file, X=X) (y, the true labels, is optional)")
            x = f["X"]
            y = f["y"] if "y" in f.files else None
            lengths = f["lengths"] if "lengths" in f.files else None
    except NPZ_ERRORS as e:
        raise _npz_error(e, path) from None
    except AttributeError:  # a bare .npy array has no context manager of its own in old NumPy
        raise UserError(f"'{path}' holds a single array (.npy format); save it with np.savez('{p.name}', X=X)") from None
    try:
        if meta.kind == "series":
            x, lengths = shorter_series(x, meta, lengths, path)
        elif lengths is not None:
            raise UserError(f"this run was trained on {meta.kind}, which has no series lengths; leave the array `lengths` out")
        x = as_model_input(x, meta).numpy()
        if lengths is not None and len(lengths) != len(x):
            raise UserError(f"X has {len(x)} series but `lengths` has {len(lengths)}; give one length per series")
    except UserError as e:  # fit_to_run's message names the file already
        raise e if str(e).startswith(f"'{path}'") else UserError(f"'{path}': {e}") from None
    if lengths is not None:
        x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0  # the padding, as in training
    labels = None
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise UserError(f"'{path}': X has {len(x)} examples but y has {len(y)} labels; give one label per example or leave y out")
        labels = [_label_text(v) for v in y]
    return x, [str(i) for i in range(len(x))], labels, lengths


def _read_archive(p: Path, path: str, meta) -> tuple[np.ndarray, list[str], list[str] | None, np.ndarray | None]:
    """Series of a .ts or .arff file of the UCR/UEA archive's format (their labels, when it has them)
    and their lengths, as `fit_to_run` takes them."""
    from .archive import _read_archive_file
    from .ucr import _convert

    if meta.kind != "series":
        raise UserError(f"'{path}' holds series but this run was trained on {meta.kind}; give {layout_text(meta)}")
    data, header_labels, _ = _read_archive_file(p, path)
    raw = _convert(data, data, header_labels, f"'{path}'")[0]
    channels = meta.input_shape[1]
    if raw.x.shape[2] != channels:
        raise UserError(f"'{path}' holds series of {raw.x.shape[2]} channel(s); this run reads {channels}")
    labels = [str(v) for v in raw.labels] if len(raw.labels) and all(str(v) not in ("", "NaN") for v in raw.labels) else None
    names = [str(i) for i in range(len(raw.x))]
    x, lengths = fit_to_run([one[:n] for one, n in zip(raw.x, raw.lengths)], names, meta, path)
    return x, names, labels, lengths


def _label_text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _read_csv(p: Path, path: str, meta, label_column) -> tuple[np.ndarray, list[str], list[str] | None, str, np.ndarray | None]:
    """One series per row: L values, or L values and a label cell (by `label_column`, default the first)."""
    from .files import (
        _check_finite,
        _check_ragged,
        _drop_trailing_delimiter,
        _is_number,
        _label_index,
        _read_rows,
        _to_floats,
    )

    if meta.kind != "series":
        raise UserError(f"a .csv holds series, one per row, but this run was trained on {meta.kind}; give a .npz with X as {layout_text(meta)} or image files")
    if (meta.columns or {}).get("layout") == "long":
        return _read_long_csv(p, path, meta, label_column)
    steps, channels = meta.input_shape
    if channels != 1:
        raise UserError(f"this run was trained on {channels}-channel series, which a .csv row cannot hold; give a .npz with X of shape (N, {steps}, {channels})")
    rows = _drop_trailing_delimiter(_read_rows(p, path))
    _check_ragged(rows, path)
    rows, ids, name_header = _set_aside(rows, meta)  # the identifier and dropped columns of the run's CSV
    first = rows[0][1]
    width = len(first)
    if width not in (steps, steps + 1):
        raise UserError(f"'{path}' rows have {width} cells; this run reads series of {steps} steps: give {steps} values per row, or a label and {steps} values")
    has_label = width == steps + 1
    if label_column is not None and not has_label:
        raise UserError(f"'{path}' rows have {width} cells, exactly one series of {steps} steps, so there is no label column; leave `label_column` out")
    if has_label:
        label_at, has_header = _label_index(label_column, first, rows[1][1] if len(rows) > 1 else None, path)
    else:
        label_at, has_header = None, any(c and not _is_number(c) for c in first)
    header = first if has_header else None
    data = rows[1:] if has_header else rows
    if not data:
        raise UserError(f"'{path}' has a header row but no data rows; expected one series per row")
    lines = [line for line, _ in data]
    columns = [j for j in range(width) if j != label_at]
    values = _to_floats([[cells[j] for j in columns] for _, cells in data], lines, columns, header, path)  # (N, L)
    _check_finite(values, lines, columns, header, path)
    labels = [cells[label_at] for _, cells in data] if has_label else None
    names = ids if ids is not None and len(ids) == len(lines) else [str(line) for line in lines]
    return values[:, :, None].astype(np.float32), names, labels, name_header if ids is not None else "input", None  # (N, L) -> (N, L, C=1)


def _read_long_csv(p: Path, path: str, meta, label_column) -> tuple[np.ndarray, list[str], list[str] | None, str, np.ndarray | None]:
    """New series in long layout (data/longform.py), read with the run's columns by header name: its
    identifier groups the rows into series (named by it), its time column orders them, its channel
    columns are the values; the label column, when the file has it, gives the true labels. The
    series' lengths as `fit_to_run` takes them."""
    from . import longform
    from .files import _check_ragged, _drop_trailing_delimiter, _read_rows

    cols = meta.columns
    group = [cols["group"]] if isinstance(cols["group"], str) else list(cols["group"])  # one name, or several
    rows = _drop_trailing_delimiter(_read_rows(p, path))
    _check_ragged(rows, path)
    header, data = rows[0][1], rows[1:]
    needed = [*group, *([cols["time"]] if cols.get("time") else []), *cols["channels"]]
    missing = [n for n in needed if n not in header]
    if missing:
        raise UserError(
            f"'{path}' has no column {', '.join(repr(n) for n in missing)}; this run reads series in long layout, one row per time step, "
            f"with the columns {', '.join(repr(n) for n in needed)} (a header row naming them)"
        )
    if not data:
        raise UserError(f"'{path}' has a header row but no data rows; expected one row per series and time step")
    lines = [line for line, _ in data]
    by_column = [[cells[j] for _, cells in data] for j in range(len(header))]
    names, groups = longform.groups(longform.series_keys(by_column, [header.index(c) for c in group]))
    time_at = header.index(cols["time"]) if cols.get("time") else None
    series = longform.series_by_group(path, header, by_column, lines, names, groups, time_at, [header.index(c) for c in cols["channels"]])
    x, lengths = fit_to_run(series, [repr(n) for n in names], meta, path, unit="rows (time steps)")
    label_name = label_column if label_column is not None else cols["label"]
    labels = None
    if label_name in header:
        labels = [by_column[header.index(label_name)][g[0]] for g in groups]
    elif label_column is not None:
        raise UserError(f"'{path}' has no column '{label_column}' (`label_column`); its columns are {', '.join(repr(h) for h in header)}")
    return x, names, labels, " / ".join(group), lengths  # (N, L, C)


def _read_images(p: Path, path: str, meta) -> tuple[np.ndarray, list[str], list[str] | None]:
    """Image files -> (N, C, H, W) in [0, 1] at the run's size and channels; a class subfolder is the true label."""
    from PIL import Image

    from .files import IMAGE_EXTENSIONS, _entries, _grey_8bit, _unreadable

    def images_in(folder: Path) -> list[Path]:
        return sorted(f for f in _entries(folder) if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS)

    if p.is_dir():
        files = [(f, None) for f in images_in(p)]
        for d in sorted(d for d in _entries(p) if d.is_dir() and not d.name.startswith(".")):
            files += [(f, d.name) for f in images_in(d)]
        if not files:
            raise UserError(f"'{path}' holds no images (PNG, JPEG, BMP or GIF), neither directly nor in subfolders")
    else:
        files = [(p, None)]
    channels, height, width = meta.input_shape
    if channels not in (1, 3):
        raise UserError(f"this run was trained on {channels}-channel images; image files give 1 (grey) or 3 (RGB); give a .npz with X instead")
    pixels = []
    for f, _ in files:
        try:
            with Image.open(f) as img:
                img.load()
                grey = _grey_8bit(img) if img.mode in ("I", "F") or img.mode.startswith("I;16") else img.convert("L")
                converted = grey if channels == 1 else img.convert("RGB")
                if converted.size != (width, height):
                    converted = converted.resize((width, height))
                a = np.asarray(converted)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow's decoders fail with many exception types on a corrupt file
            raise _unreadable(f, e) from None
        pixels.append(a[None] if channels == 1 else a.transpose(2, 0, 1))  # (H, W) -> (1, H, W); (H, W, 3) -> (3, H, W)
    x = np.stack(pixels).astype(np.float32) / 255.0  # (N, C, H, W) in [0, 1]
    base = p if p.is_dir() else p.parent
    names = [str(f.relative_to(base)) for f, _ in files]
    labels = [label for _, label in files]
    return x, names, labels if all(label is not None for label in labels) else None


# -- arrays -----------------------------------------------------------------------------------------
def layout_text(meta) -> str:
    """The input layout a model expects, for error messages: "(N, 40, 1) series"."""
    shape = ", ".join(str(s) for s in meta.input_shape)
    what = {"series": "series (N, steps, channels)", "image": "images (N, channels, height, width)", "text": "character ids (N, steps)", "table": "encoded table rows (N, features)"}[meta.kind]
    return f"({'N, ' + shape}) {what}"


def as_model_input(x, meta) -> torch.Tensor:
    """`x` (array-like) in the run's natural layout as a tensor: float32, or int64 character ids for text.

    Series (N, L, C) may come as (N, L) when C is 1, images (N, C, H, W) as (N, H, W) when C is 1.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise UserError(f"the inputs cannot be read as an array ({e}); give {layout_text(meta)}") from None
    if arr.dtype.kind not in "biuf":
        raise UserError(f"the inputs hold {arr.dtype} values; give numbers as {layout_text(meta)}")
    want = tuple(meta.input_shape)
    if arr.ndim == len(want) and arr.shape == want:
        arr = arr[None]  # one example without its batch axis
    if arr.ndim == len(want) and len(want) >= 2 and meta.kind != "table" and want[0 if meta.kind == "image" else -1] == 1:
        arr = arr[:, None] if meta.kind == "image" else arr[..., None]  # (N, H, W) -> (N, 1, H, W); (N, L) -> (N, L, 1)
    if arr.ndim != len(want) + 1 or tuple(arr.shape[1:]) != want:
        raise UserError(f"the inputs have shape {tuple(arr.shape)}; this model was trained on {layout_text(meta)}")
    if meta.kind == "text":
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise UserError("text inputs are character ids (whole numbers); the values given have fractions")
        if arr.size and (arr.min() < 0 or arr.max() >= meta.n_classes):
            raise UserError(f"character ids must lie in 0..{meta.n_classes - 1} (the run's vocabulary); got {arr.min()}..{arr.max()}")
        return torch.as_tensor(arr.astype(np.int64))
    if not np.all(np.isfinite(arr)):
        raise UserError("the inputs hold NaN or infinite values; every value must be a finite number")
    return torch.tensor(arr, dtype=torch.float32)  # a copy: read-only arrays stay untouched

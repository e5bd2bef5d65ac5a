"""Predictions of a trained model on new inputs: arrays in a notebook, files on the command line.

`StoredRun.predict` / `predict_proba` (from `nncompare.load_run`) and `nncompare predict RUN INPUT`
call the functions here. Inputs are checked against the shape the model was trained on, and a
mismatch is a `UserError` that names both shapes.

What a file holds is read as the data loaders read it (`data/files.py`):
- `.npz` with an array `X` (and optionally `y`, the true labels): series (N, L) or (N, L, C), images
  (N, C, H, W) or (N, H, W) for one channel;
- `.csv` / `.tsv`: one series per row, L values, or a label and L values (`label_column`, default the
  first column when the row has one cell more than the series has steps);
- a folder of images (flat, or one subfolder per class, whose name is then the true label) or one
  image file: resized to the training size, grey or RGB as the run was trained, pixels scaled to [0, 1].

The values go through the same per-example preprocessing as the run's training data where the loader
applies one: series from the user's CSV/NPZ files and univariate UCR series are z-normalised per
series and channel unless the run was trained with `normalize=False`. Anything else is taken as given:
a `.npz` for a run on a built-in data set holds inputs as that data set's loader returns them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

INPUT_KINDS = "a .npz with an array X, a .csv of series (one per row), an image file or a folder of images"


# -- arrays -----------------------------------------------------------------------------------------
def layout_text(meta) -> str:
    """The input layout a model expects, for error messages: "(N, 40, 1) series"."""
    shape = ", ".join(str(s) for s in meta.input_shape)
    what = {"series": "series (N, steps, channels)", "image": "images (N, channels, height, width)", "text": "character ids (N, steps)"}[meta.kind]
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
    if arr.ndim == len(want) and len(want) >= 2 and want[0 if meta.kind == "image" else -1] == 1:
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


@torch.no_grad()
def model_outputs(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Raw outputs in eval mode, in batches, on the model's device; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    if not out:
        raise UserError("no inputs given; give at least one example")
    return torch.cat(out)


def probabilities(model, meta, x) -> np.ndarray:
    """Class probabilities: (N, K), or (N, T, K) for one label per position."""
    if meta.task == "regress":
        raise UserError("this run predicts values (regression), which have no class probabilities; use predict")
    return torch.softmax(model_outputs(model, as_model_input(x, meta)).double(), dim=-1).numpy()


def predictions(model, meta, x) -> np.ndarray:
    """Class names (or ids when the data set names none) for classification, one per input (per
    position for per-position tasks); predicted values (N,) or (N, D) for regression."""
    out = model_outputs(model, as_model_input(x, meta))
    if meta.task == "regress":
        values = out.double().numpy()
        return values.reshape(len(values), -1)[:, 0] if meta.n_outputs <= 1 else values.reshape(len(values), -1)
    ids = out.argmax(-1).numpy()
    if meta.class_names and len(meta.class_names) == meta.n_classes:
        return np.asarray(meta.class_names, dtype=object)[ids]
    return ids


# -- the preprocessing of the run's loader ---------------------------------------------------------
def normalises_series(config: dict) -> bool:
    """Whether the run's loader z-normalised each series on its own (an example-by-example transform
    that new inputs must get as well): the user's CSV/NPZ series and univariate UCR series, unless the
    run was trained with normalize=False. (Multivariate UCR series are standardised with the training
    split's statistics instead, and the built-in sets are used as generated.)"""
    from .data import list_families, list_sources
    from .data.files import looks_like_path

    meta = config.get("dataset_meta", {})
    if meta.get("kind") != "series" or config.get("data_options", {}).get("normalize", True) is False:
        return False
    source = str(config.get("dataset", ""))
    if source in {s.name for s in list_sources()}:
        return False
    prefix, colon, _ = source.partition(":")
    if colon and prefix in {f.name.split(":")[0] for f in list_families()}:
        return prefix == "ucr" and list(meta.get("input_shape", [0, 0]))[-1] == 1
    return looks_like_path(source) and source.lower().endswith((".csv", ".tsv", ".npz"))


# -- files -------------------------------------------------------------------------------------------
def read_inputs(path: str, run, label_column=None) -> tuple[np.ndarray, list[str], list[str] | None]:
    """(inputs in the run's layout, a name per example, the true labels as text or None) from a file."""
    from .data.files import IMAGE_EXTENSIONS, TABLE_EXTENSIONS, _expand, znormalise

    meta = run.meta
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
            raise UserError("a label column is only read from a .csv file; leave --label-column out")
        return _read_images(p, path, meta)
    if suffix == ".npz":
        if label_column is not None:
            raise UserError("a label column is only read from a .csv file; leave --label-column out")
        x, names, labels = _read_npz(p, path, meta)
    elif suffix in TABLE_EXTENSIONS:
        x, names, labels = _read_csv(p, path, meta, label_column)
    else:
        raise UserError(f"'{path}' has an unsupported extension '{p.suffix or '(none)'}'; give {INPUT_KINDS}")
    if meta.kind == "series" and normalises_series(run.config):
        x = znormalise(x.reshape(len(x), *meta.input_shape))
    return x, names, labels


def _read_npz(p: Path, path: str, meta) -> tuple[np.ndarray, list[str], list[str] | None]:
    from .data.files import NPZ_ERRORS, _npz_error

    try:
        with np.load(p, allow_pickle=False) as f:
            if not isinstance(f, np.lib.npyio.NpzFile) or "X" not in f.files:
                raise UserError(f"'{path}' has no array X; save the inputs with np.savez(file, X=X) (y, the true labels, is optional)")
            x = f["X"]
            y = f["y"] if "y" in f.files else None
    except NPZ_ERRORS as e:
        raise _npz_error(e, path) from None
    except AttributeError:  # a bare .npy array has no context manager of its own in old NumPy
        raise UserError(f"'{path}' holds a single array (.npy format); save it with np.savez('{p.name}', X=X)") from None
    try:
        x = as_model_input(x, meta).numpy()
    except UserError as e:
        raise UserError(f"'{path}': {e}") from None
    labels = None
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise UserError(f"'{path}': X has {len(x)} examples but y has {len(y)} labels; give one label per example or leave y out")
        labels = [_label_text(v) for v in y]
    return x, [str(i) for i in range(len(x))], labels


def _label_text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _read_csv(p: Path, path: str, meta, label_column) -> tuple[np.ndarray, list[str], list[str] | None]:
    """One series per row: L values, or L values and a label cell (by `label_column`, default the first)."""
    from .data.files import _check_finite, _check_ragged, _drop_trailing_delimiter, _is_number, _label_index, _read_rows, _to_floats

    if meta.kind != "series":
        raise UserError(f"a .csv holds series, one per row, but this run was trained on {meta.kind}; give a .npz with X as {layout_text(meta)} or image files")
    steps, channels = meta.input_shape
    if channels != 1:
        raise UserError(f"this run was trained on {channels}-channel series, which a .csv row cannot hold; give a .npz with X of shape (N, {steps}, {channels})")
    rows = _drop_trailing_delimiter(_read_rows(p, path))
    _check_ragged(rows, path)
    first = rows[0][1]
    width = len(first)
    if width not in (steps, steps + 1):
        raise UserError(f"'{path}' rows have {width} cells; this run reads series of {steps} steps: give {steps} values per row, or a label and {steps} values")
    has_label = width == steps + 1
    if label_column is not None and not has_label:
        raise UserError(f"'{path}' rows have {width} cells, exactly one series of {steps} steps, so there is no label column; leave --label-column out")
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
    return values[:, :, None].astype(np.float32), [str(line) for line in lines], labels  # (N, L) -> (N, L, C=1)


def _read_images(p: Path, path: str, meta) -> tuple[np.ndarray, list[str], list[str] | None]:
    """Image files -> (N, C, H, W) in [0, 1] at the run's size and channels; a class subfolder is the true label."""
    from PIL import Image

    from .data.files import IMAGE_EXTENSIONS, _entries, _grey_8bit, _unreadable

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


def predictions_csv(run, x: np.ndarray, names: list[str], labels: list[str] | None) -> tuple[str, float | None]:
    """CSV text (a row per input: its name, [its label,] the prediction and, for classification, the
    probability of each class) and the accuracy when the true labels are known (else None)."""
    meta = run.meta
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    accuracy = None
    if meta.task == "regress":
        values = predictions(run.model, meta, x).reshape(len(x), -1)
        columns = ["predicted"] if values.shape[1] == 1 else [f"predicted_{j}" for j in range(values.shape[1])]
        writer.writerow(["input", *(["label"] if labels else []), *columns])
        for i, name in enumerate(names):
            writer.writerow([name, *([labels[i]] if labels else []), *(f"{v:.6g}" for v in values[i])])
        return buf.getvalue(), None
    probs = probabilities(run.model, meta, x)  # (N, K)
    class_names = list(meta.class_names) if len(meta.class_names) == meta.n_classes else [str(k) for k in range(meta.n_classes)]
    predicted = [class_names[k] for k in probs.argmax(1)]
    writer.writerow(["input", *(["label"] if labels else []), "predicted", *(f"p_{c}" for c in class_names)])
    for i, name in enumerate(names):
        writer.writerow([name, *([labels[i]] if labels else []), predicted[i], *(f"{p:.6f}" for p in probs[i])])
    if labels:
        accuracy = float(np.mean([a == b for a, b in zip(predicted, labels)]))
    return buf.getvalue(), accuracy


def predict_file(run_dir, input_path, out=None, label_column=None) -> dict:
    """`nncompare predict`: read `input_path`, predict with the run in `run_dir`, write the CSV to
    `out` (default: predictions.csv in the current folder). Returns where, how many and the accuracy."""
    from .store import load_run
    from .utils import atomic_write_text

    run = load_run(run_dir)
    x, names, labels = read_inputs(input_path, run, label_column)
    text, accuracy = predictions_csv(run, x, names, labels)
    out = Path(out) if out is not None else Path("predictions.csv")
    if out.is_dir():
        raise UserError(f"'{out}' is a folder; give --out a file name such as {out / 'predictions.csv'}")
    atomic_write_text(out, text)
    return {"out": out, "n": len(x), "accuracy": accuracy, "task": run.meta.task}

"""Files of the UCR/UEA archive on the user's disk, given by path: `nncompare compare Coffee_TRAIN.ts`.

Three formats, as the archive has shipped them:
- `.ts` (sktime's format, the archive since 2018) and `.arff` (Weka's), read with aeon;
- the text format of the 2015 archive and of the 2018 release's `.tsv` files: no header, one series
  per line, the class label first, the values separated by commas, tabs or spaces (`Coffee_TRAIN.txt`,
  `Coffee_TRAIN.tsv`, `Coffee_TRAIN`); shorter series padded with NaN at the end.

A file named NAME_TRAIN.ext with NAME_TEST.ext beside it (either may be given, or the folder that holds
the two, as the archive's download unpacks a set) is one problem with
its published split, exactly as `ucr:NAME` loads it: TRAIN minus a stratified 20% validation split,
TEST as published; the same files give the same tensors as `ucr:NAME`, to the bit. A file alone is
split as every other user file is (data/files.py: stratified, seed 0, 20% test, then 20% of the rest
for validation). A regression problem (a .ts file whose header says `@targetLabel true`, as the
Monash/UEA extrinsic regression archive's are, Tan et al. 2021) is compared as regression: the same
splits, random instead of stratified, and the targets standardised with the training split's mean and
std (data/base.py `standardise_targets`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import Dataset
from .userdata import _is_number
from .ucr import _convert, _description, _header_class_labels, _label_order, _published_split, _archive_dataset, _ts_header

AEON_EXTENSIONS = (".ts", ".arff")
TEXT_SEPARATORS = re.compile(r"[\s,]+")  # the 2015 archive: commas (or spaces, as some copies have it); the 2018 .tsv: tabs


def archive_pair(p: Path) -> tuple[Path, Path] | None:
    """(TRAIN, TEST) when `p` is NAME_TRAIN.ext or NAME_TEST.ext and the other file of the pair is beside it."""
    m = re.fullmatch(r"(.+)_(train|test)", p.stem, flags=re.IGNORECASE)
    if m is None:
        return None
    base = m.group(1)
    found = []
    for part in ("TRAIN", "TEST"):
        names = {f"{base}_{v}{p.suffix}" for v in (part, part.lower(), part.title())}
        found.append(next((p.with_name(n) for n in sorted(names) if p.with_name(n).is_file()), None))
    return (found[0], found[1]) if None not in found else None


def pair_in_folder(folder: Path) -> Path | None:
    """The TRAIN file of the one archive pair in `folder` (as the archive's download unpacks a set:
    Coffee/Coffee_TRAIN.ts beside Coffee/Coffee_TEST.ts), else None. Where several formats of the set
    lie there, .ts is read first, then .arff, .tsv, .txt and no extension."""
    for suffix in (".ts", ".arff", ".tsv", ".txt", ""):
        trains = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() == suffix and re.fullmatch(r".+_train", f.stem, flags=re.IGNORECASE))
        pairs = [f for f in trains if archive_pair(f) is not None and (suffix in AEON_EXTENSIONS or all(text_format(g) for g in archive_pair(f)))]
        if len(pairs) == 1:
            return pairs[0]
    return None


def text_format(p: Path) -> bool:
    """Whether `p` looks like the archive's text format: its first line is two or more numbers (a
    label and values; NaN counts), so no header."""
    try:
        with open(p, encoding="utf-8-sig", errors="strict") as f:
            first = next((line for line in f if line.strip()), "")
    except (OSError, UnicodeDecodeError):
        return False
    cells = TEXT_SEPARATORS.split(first.strip())
    return len(cells) >= 2 and all(_is_number(c) for c in cells)


def _read_text_format(p: Path, path: str) -> tuple[list[np.ndarray], np.ndarray]:
    """(series as (1, L_i) arrays, as aeon returns them; labels) of a file in the archive's text format."""
    from .userdata import _number_name

    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read '{path}' ({e}); save it as UTF-8 text") from None
    series, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = TEXT_SEPARATORS.split(line.strip())
        try:
            values = np.array([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise UserError(f"'{path}' line {number} holds '{bad}', which is not a number; a file of the archive's text format holds a label and the values on each line, numbers only") from None
        if len(values) < 2 or not np.isfinite(values[0]):
            raise UserError(f"'{path}' line {number} needs a class label first and at least one value after it")
        labels.append(_number_name(values[0]))
        series.append(values[None, 1:])  # (1, L_i): one channel
    return series, np.array(labels)


def _read_archive_file(p: Path, path: str) -> tuple[tuple, list[str], bool]:
    """((X, y), the header's class labels, whether it is a regression problem) of one archive file:
    .ts or .arff through aeon, the text format with `_read_text_format`."""
    regress = False
    if p.suffix.lower() not in AEON_EXTENSIONS:
        data, labels = _read_text_format(p, path), []
    else:
        from aeon.datasets import load_from_arff_file, load_from_ts_file

        ts = p.suffix.lower() == ".ts"
        regress = ts and _ts_header(p).get("targetlabel", "").lower() == "true"
        try:
            data = load_from_ts_file(str(p)) if ts else load_from_arff_file(str(p))
        except (OSError, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError) as e:
            raise UserError(f"'{path}' cannot be read as a {p.suffix} file of the UCR/UEA archive's format ({type(e).__name__}: {e}); check the file, or give a .csv or .npz") from None
        labels = _header_class_labels(p) if ts else []
    if len(data[1]) == 0:
        raise UserError(f"'{path}' holds no series; expected a file of the UCR/UEA archive's format (.ts, .arff, or a label and the values per line)")
    return data, labels, regress


def load_archive_file(p: Path, path: str, normalize: bool) -> Dataset:
    """A file of the archive on the user's disk, alone or one of a TRAIN/TEST pair (the module docstring)."""
    from .userdata import _check_classes, _check_sizes, _split_indices

    pair = archive_pair(p)
    files = pair if pair is not None else (p,)
    read = [_read_archive_file(f, str(f) if f != p else path) for f in files]
    labels = next((r[1] for r in read if r[1]), [])
    raw = _convert(read[0][0], read[-1][0], labels, f"'{path}'")  # alone: the file is read once and converted as both parts
    train, test = raw[0], raw[1] if pair is not None else raw[0]
    if any(r[2] for r in read):
        if not all(r[2] for r in read):
            raise UserError(f"'{files[0]}' and '{files[1]}' disagree on the problem: one header says @targetLabel true (regression), the other not; give the pair of one problem")
        return _load_regression(path, p, files, train, test, pair is not None, normalize)
    classes = _label_order(np.concatenate([train.labels, test.labels]))
    every = np.concatenate([train.labels, test.labels]) if pair is not None else train.labels
    class_ids = {label: i for i, label in enumerate(classes)}
    ids = np.array([class_ids[v] for v in every])
    _check_sizes(ids, classes, path, "series")
    _check_classes(ids, classes, path, "the class labels", "series", fix="give a classification problem (regression: built-in data sets only)")
    reference = f"the user's file{'s' if pair else ''} {', '.join(repr(str(f)) for f in files)} (UCR/UEA archive format)"
    name = re.sub(r"_(train|test)$", "", p.stem, flags=re.IGNORECASE)
    if pair is not None:
        if len(train.labels) < 2:
            raise UserError(f"'{files[0]}' holds {len(train.labels)} series; a TRAIN file needs at least 2, one to train on and one to validate with")
        return _published_split(path, name, train, test, normalize, reference)
    keep, held, rest = _split_indices(ids)
    split = f"{len(keep)} train / {len(held)} val / {len(rest)} test (one file: stratified, seed 0)"
    description = _description(name, train, train, len(keep), len(held), len(classes), split)
    return _archive_dataset(path, description, reference, {"train": (train, keep), "val": (train, held), "test": (train, rest)}, classes, normalize)


def _load_regression(path: str, p: Path, files: tuple, train, test, paired: bool, normalize: bool) -> Dataset:
    """A regression problem of the archive (`@targetLabel true`): the splits of a classification file,
    random instead of stratified; the targets standardised on the training split."""
    from .ucr import SPLIT_SEED, VAL_FRACTION
    from .userdata import MIN_EXAMPLES, _split_indices, split_off

    for raw, f in ((train, files[0]), (test, files[-1])):
        bad = [i for i, v in enumerate(raw.labels) if not (_is_number(v) and np.isfinite(float(v)))]
        if bad:
            raise UserError(f"'{f}' series {bad[0]} has the target '{raw.labels[bad[0]]}', which is not a finite number; a regression file (@targetLabel true) needs a number for every series")
    if len(train.labels) < (2 if paired else MIN_EXAMPLES):
        raise UserError(f"'{files[0]}' holds {len(train.labels)} series; too few to train on and validate with")
    reference = f"the user's file{'s' if paired else ''} {', '.join(repr(str(f)) for f in files)} (UCR/UEA archive format, regression)"
    name = re.sub(r"_(train|test)$", "", p.stem, flags=re.IGNORECASE)
    if paired:
        keep, held = split_off(train.labels.astype(np.float64), VAL_FRACTION)
        parts = {"train": (train, keep), "val": (train, held), "test": (test, np.arange(len(test.labels)))}
        split = f"{len(keep)} train / {len(held)} val ({VAL_FRACTION:.0%} of the published train, random, seed {SPLIT_SEED}) / {len(test.labels)} test (published)"
    else:
        keep, held, rest = _split_indices(train.labels.astype(np.float64))
        parts = {"train": (train, keep), "val": (train, held), "test": (train, rest)}
        split = f"{len(keep)} train / {len(held)} val / {len(rest)} test (one file: random, seed {SPLIT_SEED})"
    description = _description(name, train, test if paired else train, len(keep), len(held), 0, split)
    return _archive_dataset(path, description, reference, parts, None, normalize)

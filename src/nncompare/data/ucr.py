"""The UCR/UEA time-series classification archive (Dau et al. 2019; Bagnall et al. 2018), through aeon.

`ucr:NAME` loads one archive problem:
- the sets aeon ships inside its package (GunPoint, ItalyPowerDemand, ArrowHead, BasicMotions,
  JapaneseVowels, ...; `bundled_ucr_names()`) are read from aeon's own folder, offline;
- any other name is handed to aeon's downloader (Zenodo), which keeps the files under
  `cache_dir()/ucr/NAME/`; offline, that fails with a message naming the bundled sets.

The published TRAIN/TEST split is kept (test stays the published one); a validation split is carved
from TRAIN. Series become (N, L, C) float32; series of varying length are zero-padded at the end to
the longest one and `Split.lengths` holds the real lengths. By default a univariate series is
z-normalised over its real steps, as in the archive and its deep-learning baselines (Fawaz et al. 2019,
dl-4-tsc); a multivariate set has each channel standardised with the training split's statistics
(see `load_ucr`); `normalize=False` keeps the archive's raw values. The converted arrays are cached as
.npz under `cache_dir()/ucr-arrays/`, so a worker process reads them without importing aeon.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..utils import atomic_write_bytes, cache_dir
from .registry import register_family
from .base import Dataset, DatasetMeta, make_split, standardise_targets, stratified_split, targets_note

VAL_FRACTION = 0.2  # of the published TRAIN; the published TEST is never touched
SPLIT_SEED = 0  # fixed: every run of every model sees the same split
NOT_ARCHIVE_SETS = frozenset({"UnitTest"})  # aeon's own test fixture, bundled but not an archive problem
REFERENCE = "UCR/UEA time series classification archive (Dau et al. 2019; Bagnall et al. 2018), loaded with aeon"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")  # archive names; keeps a name from being a path


@dataclass
class RawSplit:
    """One published split after layout conversion, before normalisation and label mapping."""

    x: np.ndarray  # (N, L, C) float64, zero-padded at the end
    lengths: np.ndarray  # (N,) int64 real steps per series
    labels: np.ndarray  # (N,) str, the archive's label strings


# -- which sets are bundled ---------------------------------------------------------------------------
def _aeon_data_dir() -> Path:
    """aeon's bundled data folder, found without importing aeon (its import costs most of a second)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("ucr:NAME needs the aeon package; install it with: pip install aeon")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def _ts_header(path: Path) -> dict[str, str]:
    """The `@key value` lines of a .ts file's header (keys lower-cased, values as written)."""
    header = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition(" ")
            if key.lower() == "@data":
                break
            header[key.lower().lstrip("@")] = value.strip()
    return header


def _header_class_labels(path: Path) -> list[str]:
    """The class labels listed in a .ts header, in the archive's case ([] for a regression file).

    aeon lower-cases the labels it reads ("Standing" -> "standing"); the header keeps the original.
    """
    value = _ts_header(path).get("classlabel", "").split()
    return value[1:] if value and value[0].lower() == "true" else []


@functools.lru_cache(maxsize=1)
def _bundled_files() -> dict[str, tuple[Path, Path]]:
    """name -> (TRAIN file, TEST file) for every classification set in aeon's data folder.

    Includes the archive's equal-length copies that aeon ships (`JapaneseVowels_eq`); leaves out
    regression sets (their header says `@targetlabel true`) and aeon's test fixtures.
    """
    root = _aeon_data_dir()
    found = {}
    for train in sorted(root.glob("*/*_TRAIN.ts")):
        name = train.name[: -len("_TRAIN.ts")]
        test = train.with_name(f"{name}_TEST.ts")
        if name in NOT_ARCHIVE_SETS or not test.is_file() or not _header_class_labels(train):
            continue
        found[name] = (train, test)
    return found


def bundled_ucr_names() -> list[str]:
    """The UCR/UEA classification sets that ship inside aeon and so load offline, sorted."""
    return sorted(_bundled_files(), key=str.lower)


# -- reading through aeon -------------------------------------------------------------------------------
def _read_bundled(name: str) -> tuple[tuple, tuple, list[str]]:
    """((X, y) TRAIN, (X, y) TEST, header labels) of a bundled set, read from aeon's package folder."""
    from aeon.datasets import load_from_ts_file

    train, test = _bundled_files()[name]
    return load_from_ts_file(str(train)), load_from_ts_file(str(test)), _header_class_labels(train)


def _download_root() -> Path:
    return cache_dir() / "ucr"


def _canonical_archive_name(name: str) -> str:
    """`name` spelt as in aeon's list of archive classification sets (matched ignoring case), else as given.

    `_eq` / `_nmv` suffixes (the archive's equal-length / gap-filled copies) are kept, lower-cased,
    as aeon expects them.
    """
    from aeon.datasets.tsc_datasets import tsc_zenodo

    base, suffix = re.fullmatch(r"(.+?)((?:_eq)?(?:_nmv)?)", name, flags=re.IGNORECASE).groups()
    by_lower = {k.lower(): k for k in tsc_zenodo}
    return by_lower.get(base.lower(), base) + suffix.lower()


def _read_downloaded(name: str) -> tuple[tuple, tuple, list[str]]:
    """((X, y) TRAIN, (X, y) TEST, header labels) through aeon's `load_classification`.

    aeon reads the files from `cache_dir()/ucr/NAME/` when an earlier call downloaded them, and
    downloads them from Zenodo otherwise. Offline, a UserError names the sets that need no network.
    """
    from aeon.datasets import load_classification

    root = _download_root()
    try:
        train = load_classification(name, split="train", extract_path=str(root))
        test = load_classification(name, split="test", extract_path=str(root))
    except (ValueError, OSError) as e:  # aeon wraps network failures and unknown names in ValueError
        raise UserError(_not_available_message(name, e)) from None
    base = re.sub(r"(_eq)?(_nmv)?$", "", name)
    header_file = root / base / f"{base}_TRAIN.ts"
    labels = _header_class_labels(header_file) if header_file.is_file() else []
    return train, test, labels


def _not_available_message(name: str, error: Exception) -> str:
    from aeon.datasets.tsc_datasets import tsc_zenodo

    bundled = bundled_ucr_names()
    base = re.sub(r"(_eq)?(_nmv)?$", "", name)
    if base in tsc_zenodo:
        reason = str(error)
    else:  # aeon refuses a name missing from its list before any network access; say it shortly
        reason = f"aeon's list of the archive's classification sets has no '{base}'"
    close = difflib.get_close_matches(name, bundled + sorted(tsc_zenodo), n=1, cutoff=0.75)
    hint = f"did you mean 'ucr:{close[0]}'? " if close and close[0] != name else ""
    return (
        f"ucr:{name} is not bundled with aeon and could not be downloaded ({reason}); {hint}"
        f"bundled sets that work offline: {', '.join(bundled)}"
    )


# -- layout -------------------------------------------------------------------------------------------
def _to_steps_last_channel(X) -> list[np.ndarray]:
    """aeon's (N, C, L) array or list of (C, L_i) arrays -> list of (L_i, C) float64 arrays."""
    return [np.asarray(series, dtype=np.float64).T for series in X]  # each (L_i, C)


def _trim_trailing_nan(series: np.ndarray) -> np.ndarray:
    """Drop the final steps where every channel is NaN.

    The archive's 2018 release padded shorter series with NaN at the end (Dau et al. 2019, "series of
    unequal length"); those steps are padding, not missing values.
    """
    observed = ~np.isnan(series).all(axis=1)  # (L,) True where some channel has a value
    last = len(observed) - int(np.argmax(observed[::-1])) if observed.any() else 0
    return series[:last]


def _check_no_missing(series_list: list[np.ndarray], source: str) -> None:
    """Refuse NaN inside a series: filling gaps is a modelling choice nncompare does not make silently."""
    bad = sum(1 for s in series_list if len(s) == 0 or np.isnan(s).any())
    if bad:
        raise UserError(
            f"{source} has missing values (NaN) inside {bad} of its series; nncompare does not fill gaps "
            f"silently: use {source}_nmv, the archive's copy with the gaps filled, where the archive has one, "
            f"or fill them yourself and load the file as your own data"
        )


def _pad_end(series_list: list[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """List of (L_i, C) -> (N, length, C) zero-padded at the end, and (N,) int64 real lengths."""
    channels = series_list[0].shape[1]
    x = np.zeros((len(series_list), length, channels), dtype=np.float64)  # (N, L, C)
    for i, s in enumerate(series_list):
        x[i, : len(s)] = s
    return x, np.array([len(s) for s in series_list], dtype=np.int64)


def _as_aeon_reads(label: str) -> str:
    """A label as aeon returns it: lower-cased, with "nan" and "?" rewritten to "NaN" (its missing-value mark)."""
    return label.lower().replace("nan", "NaN").replace("?", "NaN")


def _convert(train: tuple, test: tuple, header_labels: list[str], source: str) -> tuple[RawSplit, RawSplit]:
    """aeon's (X, y) TRAIN and TEST -> RawSplits sharing one padded length L (the longest series)."""
    series = {}
    for part, (X, _) in (("train", train), ("test", test)):
        series[part] = [_trim_trailing_nan(s) for s in _to_steps_last_channel(X)]
        _check_no_missing(series[part], source)
    if series["train"][0].shape[1] != series["test"][0].shape[1]:
        raise UserError(f"{source}: TRAIN and TEST have different numbers of channels; the archive files are damaged")
    length = max(len(s) for part in series.values() for s in part)
    original = {_as_aeon_reads(label): label for label in header_labels}  # restore the archive's spelling
    raw = []
    for part, (_, y) in (("train", train), ("test", test)):
        x, lengths = _pad_end(series[part], length)
        labels = np.array([original.get(str(v), str(v)) for v in y])
        raw.append(RawSplit(x=x, lengths=lengths, labels=labels))
    return raw[0], raw[1]


# -- the .npz cache ----------------------------------------------------------------------------------------
# Parsing a bundled set takes 0.01-0.1 s, but importing aeon takes 0.7-1.8 s in a fresh process, and
# every worker of a comparison is a fresh process; big downloaded sets take far longer to parse. The
# converted arrays are therefore cached once and read back with NumPy alone (no pickle).
def _cache_path(name: str) -> Path:
    from importlib.metadata import version

    return cache_dir() / "ucr-arrays" / f"{name}-aeon{version('aeon')}.npz"


def _read_cache(name: str) -> tuple[RawSplit, RawSplit] | None:
    path = _cache_path(name)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return tuple(RawSplit(x=f[f"x_{p}"], lengths=f[f"lengths_{p}"], labels=f[f"labels_{p}"]) for p in ("train", "test"))
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache file is rebuilt from the .ts files


def _write_cache(name: str, train: RawSplit, test: RawSplit) -> None:
    arrays = {}
    for part, raw in (("train", train), ("test", test)):
        arrays.update({f"x_{part}": raw.x, f"lengths_{part}": raw.lengths, f"labels_{part}": raw.labels.astype(str)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(_cache_path(name), buf.getvalue())


def _resolve(name: str) -> tuple[str, bool]:
    """(the set's name as the archive spells it, whether it is bundled); case is ignored."""
    name = name.strip()
    if not _NAME_PATTERN.match(name):
        raise UserError(f"'ucr:{name}' is not an archive name; use letters, digits and underscores, as in ucr:GunPoint")
    bundled = {n.lower(): n for n in _bundled_files()}
    if name.lower() in bundled:
        return bundled[name.lower()], True
    return _canonical_archive_name(name), False


def load_raw(name: str) -> tuple[str, RawSplit, RawSplit]:
    """(canonical name, TRAIN, TEST) as RawSplits; parsed with aeon, or read from the .npz cache."""
    name, bundled = _resolve(name)
    cached = _read_cache(name)
    if cached is not None:
        return name, *cached
    train, test, header_labels = _read_bundled(name) if bundled else _read_downloaded(name)
    raw_train, raw_test = _convert(train, test, header_labels, f"ucr:{name}")
    _write_cache(name, raw_train, raw_test)
    return name, raw_train, raw_test


# -- values ---------------------------------------------------------------------------------------------
def z_normalize(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each series, each channel, to mean 0 and std 1 over its real steps; padding stays exactly 0.

    As in the archive's deep-learning baselines (Fawaz et al. 2019): the population std (ddof 0). A
    channel that is constant over its real steps becomes all zeros instead of dividing by zero.
    """
    length = x.shape[1]
    real = (np.arange(length)[None, :] < lengths[:, None])[:, :, None]  # (N, L, 1)
    count = lengths[:, None, None].astype(np.float64)  # (N, 1, 1)
    mean = np.where(real, x, 0.0).sum(axis=1, keepdims=True) / count  # (N, 1, C)
    centred = np.where(real, x - mean, 0.0)  # (N, L, C)
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / count)  # (N, 1, C)
    constant = np.where(real, x, np.inf).min(axis=1, keepdims=True) == np.where(real, x, -np.inf).max(axis=1, keepdims=True)
    return np.where(constant, 0.0, centred / np.where(constant, 1.0, std))


def channel_statistics(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (C,) over every real step of every series in `x` (N, L, C)."""
    real = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, L)
    steps = x[real]  # (real steps, C)
    std = steps.std(axis=0)
    return steps.mean(axis=0), np.where(std > 0, std, 1.0)


def standardize_channels(x: np.ndarray, lengths: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel on real steps; padding stays exactly 0."""
    real = (np.arange(x.shape[1])[None, :] < lengths[:, None])[:, :, None]  # (N, L, 1)
    return np.where(real, (x - mean) / std, 0.0)


def _label_order(values) -> list[str]:
    """Distinct labels in sorted order: numerically when every label is a number ("2" before "10")."""
    distinct = sorted(set(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _split(raw: RawSplit, index: np.ndarray, targets, normalize, varying: bool):
    """One split; `targets` maps its label strings to y; `normalize` is False, "series" (z-normalise
    each series) or (mean, std) per channel."""
    x, lengths = raw.x[index], raw.lengths[index]
    if normalize == "series":
        x = z_normalize(x, lengths)
    elif normalize is not False:
        x = standardize_channels(x, lengths, *normalize)
    return make_split(x.astype(np.float32), targets(raw.labels[index]), raw.lengths[index] if varying else None)


def _description(name: str, train: RawSplit, test: RawSplit, n_train: int, n_val: int, n_classes: int, split: str | None = None) -> str:
    """The data set's one-line description; `n_classes` 0: a regression problem."""
    length, channels = train.x.shape[1:]
    shortest = int(min(train.lengths.min(), test.lengths.min()))
    span = f"length {length}" if shortest == length else f"length {shortest}-{length} (zero-padded to {length})"
    split = split or f"{n_train} train / {n_val} val ({VAL_FRACTION:.0%} of the published train) / {len(test.labels)} test (published)"
    what = f"{n_classes} classes" if n_classes else "a value per series (regression; targets standardised with the training split's mean and std)"
    return f"UCR/UEA {name}: {what}, {channels}-channel series of {span}; {split}"


@register_family(
    "ucr",
    kind="series",
    summary="UCR/UEA archive via aeon: sets bundled with aeon (GunPoint, ArrowHead, BasicMotions, JapaneseVowels, ...) offline; others downloaded",
    argument="NAME",
)
def load_ucr(name: str, *, normalize: bool = True) -> Dataset:
    """One archive problem: published TRAIN (minus a stratified 20% validation split) and published TEST."""
    if not isinstance(normalize, bool):
        raise UserError(f"normalize must be True or False, got {normalize!r}")
    name, train, test = load_raw(name)
    return _published_split(f"ucr:{name}", name, train, test, normalize, REFERENCE)


def _published_split(source: str, name: str, train: RawSplit, test: RawSplit, normalize: bool, reference: str) -> Dataset:
    """The Dataset of a TRAIN/TEST pair: TRAIN minus a stratified validation split, TEST as published."""
    classes = _label_order(np.concatenate([train.labels, test.labels]))
    class_ids = {label: i for i, label in enumerate(classes)}
    keep, held = stratified_split(np.array([class_ids[v] for v in train.labels]), VAL_FRACTION, SPLIT_SEED)
    parts = {"train": (train, keep), "val": (train, held), "test": (test, np.arange(len(test.labels)))}
    return _archive_dataset(source, _description(name, train, test, len(keep), len(held), len(classes)), reference, parts, classes, normalize)


def _archive_dataset(source: str, description: str, reference: str, parts: dict, classes: list[str] | None, normalize: bool) -> Dataset:
    """`parts`: {"train" | "val" | "test": (RawSplit, indexes into it)} -> the Dataset, normalised.
    `classes` None: a regression problem, its labels numbers, standardised with the training split's
    mean and std (data/base.py `standardise_targets`)."""
    train, keep = parts["train"]
    if classes is None:
        _, target_scaling = standardise_targets(train.labels[keep].astype(np.float64), np.arange(len(keep)))

        def targets(labels):
            return ((labels.astype(np.float64) - target_scaling["mean"]) / target_scaling["std"]).astype(np.float32)
    else:
        class_ids = {label: i for i, label in enumerate(classes)}

        def targets(labels):
            return np.array([class_ids[v] for v in labels], dtype=np.int64)
    length = train.x.shape[1]
    varying = any(bool((raw.lengths[index] < length).any()) for raw, index in parts.values())
    if normalize:
        # univariate: each series z-normalised (the archive's convention, Dau et al. 2019). Multivariate:
        # per series and channel that would erase levels that carry the class (JapaneseVowels' cepstra:
        # 72.9% with it, 95.7% raw, GRU, benchmarks/timeseries.py), so each channel is standardised with
        # the training split's statistics instead, which keeps differences between series.
        normalize = "series" if train.x.shape[2] == 1 else channel_statistics(train.x[keep], train.lengths[keep])
    meta = DatasetMeta(
        name=source,
        kind="series",
        task="classify" if classes is not None else "regress",
        input_shape=tuple(train.x.shape[1:]),
        n_classes=len(classes) if classes is not None else 0,
        class_names=[str(c) for c in classes or []],
        description=description,
        reference=reference,
        n_outputs=0 if classes is not None else 1,
        target_scaling={} if classes is not None else target_scaling,
    )
    if classes is None:
        meta.notes = [targets_note(source, target_scaling, why="its header says @targetLabel true")]
    if isinstance(normalize, tuple):
        meta.channel_scaling = {"mean": [float(v) for v in normalize[0]], "std": [float(v) for v in normalize[1]]}
    splits = {part: _split(raw, index, targets, normalize, varying) for part, (raw, index) in parts.items()}
    return Dataset(train=splits["train"], val=splits["val"], test=splits["test"], meta=meta)

"""The source registry: `@register_source` / `@register_family` fill it, `load_dataset` reads it.
The source strings it accepts are described in data/__init__.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UserError, did_you_mean
from .base import Dataset

_SOURCES: dict[str, "SourceInfo"] = {}
_FAMILIES: dict[str, "SourceInfo"] = {}
_PATHS: list = []  # [looks_like_path, loader] of the user's own files, see register_paths


@dataclass(frozen=True)
class SourceInfo:
    name: str  # the name, or for a family "prefix:ARG"
    kind: str
    summary: str  # one line for `nncompare datasets`
    loader: Callable[..., Dataset]
    family: bool = False  # True: the loader takes the text after "prefix:"


def register_source(name: str, kind: str, summary: str):
    """Decorator: register `fn() -> Dataset` under `name`."""

    def wrap(fn):
        if name in _SOURCES:
            raise ValueError(f"data source {name!r} registered twice")
        _SOURCES[name] = SourceInfo(name=name, kind=kind, summary=summary, loader=fn)
        return fn

    return wrap


def register_family(prefix: str, kind: str, summary: str, argument: str):
    """Decorator: register `fn(argument: str) -> Dataset` for source strings "prefix:ARGUMENT"."""

    def wrap(fn):
        if prefix in _FAMILIES:
            raise ValueError(f"data family {prefix!r} registered twice")
        _FAMILIES[prefix] = SourceInfo(name=f"{prefix}:{argument}", kind=kind, summary=summary, loader=fn, family=True)
        return fn

    return wrap


def register_paths(looks_like_path: Callable[[str], bool], loader: Callable[..., Dataset]) -> None:
    """The loader of the user's own files: a source for which `looks_like_path` is true goes to
    `loader(path, **options)` (data/files.py registers itself on import)."""
    _PATHS[:] = [looks_like_path, loader]


def list_sources() -> list[SourceInfo]:
    """The named data sets (they load without arguments)."""
    return [_SOURCES[k] for k in sorted(_SOURCES)]


def list_families() -> list[SourceInfo]:
    """The families that take an argument after a colon, e.g. `mnist:DIR`."""
    return [_FAMILIES[k] for k in sorted(_FAMILIES)]


def valid_sources() -> list[str]:
    return sorted(_SOURCES) + [f.name for f in list_families()]


def _call(info: SourceInfo, args: tuple, options: dict, source: str) -> Dataset:
    """Call a loader with its loader-specific keyword options; an option it does not take is refused."""
    import inspect

    accepted = [k for k, p in inspect.signature(info.loader).parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        what = f"options: {', '.join(accepted)}" if accepted else "no options"
        raise UserError(f"data set '{source}' takes no option {', '.join(unknown)}; it takes {what}")
    return info.loader(*args, **options)


def load_dataset(source: str, **options) -> Dataset:
    """Load a data set from a source string (deterministic; generated data is cached on disk).

    `options` are loader-specific keywords (e.g. `normalize=False` for UCR series); a loader declares
    the ones it takes as keyword-only parameters. One option every source takes: `permute=SEED`
    shuffles the input positions by a fixed permutation (order sensitivity, see data/order.py).
    """
    if "permute" in options:
        from .order import permuted_dataset

        options = dict(options)
        seed = options.pop("permute")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UserError(f"permute must be a whole number >= 0 (the permutation's seed), got {seed!r}")
        return permuted_dataset(load_dataset(source, **options), seed)
    dataset = _load(source, options)
    dataset.meta.varying_length = any(s.lengths is not None for s in (dataset.train, dataset.val, dataset.test))
    return dataset


def _load(source: str, options: dict) -> Dataset:
    if not isinstance(source, str) or not source.strip():
        raise UserError(f"no data set given; valid choices: {', '.join(valid_sources())}")
    if source in _SOURCES:
        return _call(_SOURCES[source], (), options, source)
    prefix, colon, argument = source.partition(":")
    if colon and prefix in _FAMILIES:
        if not argument:
            raise UserError(f"'{source}' needs an argument after the colon, as in {_FAMILIES[prefix].name}")
        return _call(_FAMILIES[prefix], (argument,), options, source)
    if _PATHS and _PATHS[0](source):  # the user's own CSV / NPZ file or image folder (data/files.py)
        return _call(SourceInfo("PATH", "", "", _PATHS[1]), (source,), options, source)
    raise UserError(f"unknown data set '{source}'; {did_you_mean(source, valid_sources())}")

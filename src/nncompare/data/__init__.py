"""Data registry: a source string ("mnist1d", "digits") maps to a loader that returns a Dataset.

Loaders register themselves with `@register_source`; `load_dataset(name)` is the only way in, and an
unknown name's error lists the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UserError, did_you_mean
from .base import Dataset, DatasetMeta, Split

_SOURCES: dict[str, "SourceInfo"] = {}


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str
    summary: str  # one line for `nncompare datasets`
    loader: Callable[[], Dataset]


def register_source(name: str, kind: str, summary: str):
    """Decorator: register `fn() -> Dataset` under `name`."""

    def wrap(fn):
        if name in _SOURCES:
            raise ValueError(f"data source {name!r} registered twice")
        _SOURCES[name] = SourceInfo(name=name, kind=kind, summary=summary, loader=fn)
        return fn

    return wrap


def list_sources() -> list[SourceInfo]:
    return [_SOURCES[k] for k in sorted(_SOURCES)]


def load_dataset(name: str) -> Dataset:
    """Load a registered data set by name (deterministic; generated data is cached on disk)."""
    if not isinstance(name, str) or name not in _SOURCES:
        raise UserError(f"unknown data set '{name}'; {did_you_mean(str(name), sorted(_SOURCES))}")
    return _SOURCES[name].loader()


# registration happens on import of the families
from . import images, series  # noqa: E402,F401

__all__ = ["Dataset", "DatasetMeta", "Split", "SourceInfo", "load_dataset", "list_sources", "register_source"]

"""Data registry: a source string maps to a loader that returns a Dataset.

Three shapes of source string:
- a name (`mnist1d`, `digits`, `seqdigits`): `@register_source(name, ...)`, loader `fn() -> Dataset`;
- a family with an argument (`mnist:DIR`, `seqmnist:DIR`): `@register_family(prefix, ...)`, loader
  `fn(argument) -> Dataset`;
- a path to the user's own file or folder: `files.load_path(path)`.

`load_dataset(source)` is the only way in; an unknown name's error lists the valid ones.
"""

from .base import Dataset, DatasetMeta, Split
from .registry import SourceInfo, list_families, list_sources, load_dataset, register_family, register_source, valid_sources

# the sources register themselves on import
from . import images, series, synthetic, text, ucr  # noqa: E402,F401
from . import files  # noqa: E402  (the user's own files, by path)

__all__ = [
    "Dataset",
    "DatasetMeta",
    "Split",
    "SourceInfo",
    "load_dataset",
    "list_sources",
    "list_families",
    "register_source",
    "register_family",
    "valid_sources",
]

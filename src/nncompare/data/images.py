"""Image sources, and their pixel-sequence variants.

- `digits`: scikit-learn's bundled 8x8 handwritten digits (1797 images), a fixed stratified split;
  `seqdigits` reads the same images as 64-step pixel sequences, `pdigits` with the pixels in one fixed
  seeded random order (the offline analogue of sequential / permuted MNIST, Le et al. 2015).
- `mnist:DIR`: MNIST or Fashion-MNIST IDX files (gzipped or not) from a folder; `seqmnist:DIR` (784
  pixels as a sequence) and `pmnist:DIR` (a fixed seeded permutation of them).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from .registry import register_family, register_source
from .base import Dataset, DatasetMeta, make_split, stratified_split

SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
DIGITS_VAL_FRACTION = 0.25  # of what remains after the test split: 60/20/20 overall
MNIST_VAL_FRACTION = 0.1  # carved from the published training set; the test set stays the published one
PERMUTATION_SEED = 1234  # fixed: the same pixel order for every split, every run and every machine
DIGIT_NAMES = [str(i) for i in range(10)]


# -- turning images into pixel sequences ---------------------------------------------------------------
def pixel_sequences(x: np.ndarray, permutation: np.ndarray | None = None) -> np.ndarray:
    """(N, C, H, W) images -> (N, H*W, C) sequences, row-major pixel order, optionally permuted."""
    n, c, h, w = x.shape
    seq = x.reshape(n, c, h * w).transpose(0, 2, 1)  # (N, L=H*W, C)
    if permutation is not None:
        seq = seq[:, permutation]
    return np.ascontiguousarray(seq)


def fixed_permutation(length: int) -> np.ndarray:
    return np.random.default_rng(PERMUTATION_SEED).permutation(length)


def _as_variant(ds: Dataset, variant: str, name: str) -> Dataset:
    """`ds` (images) as itself ("image"), as pixel sequences ("seq") or permuted sequences ("perm")."""
    if variant == "image":
        return ds
    c, h, w = ds.meta.input_shape
    perm = fixed_permutation(h * w) if variant == "perm" else None

    def convert(split):
        return make_split(pixel_sequences(split.x.numpy(), perm), split.y.numpy())

    order = f"in a fixed random order (seed {PERMUTATION_SEED})" if perm is not None else "in row-major order"
    meta = DatasetMeta(
        name=name,
        kind="series",
        task=ds.meta.task,
        input_shape=(h * w, c),
        n_classes=ds.meta.n_classes,
        class_names=ds.meta.class_names,
        description=f"{ds.meta.description}; read as {h * w}-step pixel sequences {order}",
        reference=ds.meta.reference,
    )
    return Dataset(train=convert(ds.train), val=convert(ds.val), test=convert(ds.test), meta=meta)


def ten_class_image_meta(name: str, x: np.ndarray, description: str, reference: str) -> DatasetMeta:
    """Metadata of a digits-like image set: (N, C, H, W) images, classes 0-9."""
    return DatasetMeta(
        name=name,
        kind="image",
        task="classify",
        input_shape=tuple(x.shape[1:]),
        n_classes=10,
        class_names=DIGIT_NAMES,
        description=description,
        reference=reference,
    )


# -- digits ---------------------------------------------------------------------------------------------
def _digits(name: str, variant: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (N, C=1, H=8, W=8), pixels in [0, 1]
    y = d.target.astype(np.int64)
    rest, test = stratified_split(y, DIGITS_TEST_FRACTION, SPLIT_SEED)
    keep, val = stratified_split(y[rest], DIGITS_VAL_FRACTION, SPLIT_SEED)
    train, val = rest[keep], rest[val]
    meta = ten_class_image_meta(
        name,
        x,
        description="8x8 grey-level digit images; fixed stratified split 60/20/20 (train/val/test, seed 0)",
        reference="UCI optical recognition of handwritten digits, bundled with scikit-learn",
    )
    images = Dataset(train=make_split(x[train], y[train]), val=make_split(x[val], y[val]), test=make_split(x[test], y[test]), meta=meta)
    return _as_variant(images, variant, name)


@register_source("digits", kind="image", summary="scikit-learn 8x8 handwritten digits (1797 images, bundled), fixed stratified split")
def load_digits_dataset() -> Dataset:
    return _digits("digits", "image")


@register_source("seqdigits", kind="series", summary="the 8x8 digits read pixel by pixel: 64-step sequences (sequential MNIST, offline)")
def load_seqdigits() -> Dataset:
    return _digits("seqdigits", "seq")


@register_source("pdigits", kind="series", summary="the 8x8 digits' 64 pixels in one fixed random order (permuted MNIST, offline)")
def load_pdigits() -> Dataset:
    return _digits("pdigits", "perm")


# -- MNIST / Fashion-MNIST IDX files ----------------------------------------------------------------------
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _idx_size(path: Path) -> int:
    """The number of values an IDX file's header declares, read without decompressing the data: a
    small .gz can declare (and expand to) more than fits in memory."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4:
            return 0
        dims = f.read(4 * head[3])
    return math.prod(int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims) - len(dims) % 4, 4))


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (LeCun's format: 2 zero bytes, a type byte, a rank byte, big-endian int32
    dimensions, then the data); only unsigned bytes (type 0x08) are used by MNIST."""
    from ..limits import check_fits

    try:
        # the bytes, then float32 images (4 bytes a value) and a pixel-sequence copy: about 12 per value
        check_fits(12 * _idx_size(path), f"'{path}'", "use a smaller data set")
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise UserError(f"cannot read '{path}' ({e}); expected an IDX file, gzipped or not") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"'{path}' is not an IDX file of unsigned bytes (bad magic number); expected MNIST's IDX format")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise UserError(f"'{path}' is truncated: its header promises {rank} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    size = int(np.prod(shape)) if shape else 0
    if len(raw) - header != size:
        raise UserError(f"'{path}' holds {len(raw) - header} data bytes but its header says {size} {shape}; the file is truncated or damaged")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx"), folder / f"{stem.replace('-idx', '.idx')}.gz"):
        if candidate.is_file():
            return candidate
    expected = ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
    raise UserError(f"'{folder}' has no {stem}[.gz]; an MNIST or Fashion-MNIST folder holds {expected}")


def _mnist(folder_text: str, name: str, variant: str) -> Dataset:
    folder = Path(folder_text).expanduser()
    if not folder.is_dir():
        raise UserError(f"'{folder_text}' is not a folder; pass the folder holding the MNIST IDX files, as in mnist:~/data/mnist")
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(
                f"'{folder}': the {split} images {images.shape} and labels {labels.shape} do not match; expected (N, H, W) images and N labels"
            )
        if labels.size and labels.max() > 9:
            raise UserError(f"'{folder}': {split} labels go up to {labels.max()}; MNIST labels are 0-9")
    x = arrays["train_images"].astype(np.float32)[:, None] / 255.0  # (N, C=1, H, W) in [0, 1]
    y = arrays["train_labels"].astype(np.int64)
    x_test = arrays["test_images"].astype(np.float32)[:, None] / 255.0
    y_test = arrays["test_labels"].astype(np.int64)
    keep, held = stratified_split(y, MNIST_VAL_FRACTION, SPLIT_SEED)
    meta = ten_class_image_meta(
        name,
        x,
        description=f"IDX images from {folder}: {len(keep)} train / {len(held)} val (10% of the published train) / {len(y_test)} test",
        reference="LeCun et al. 1998 (MNIST) or Xiao et al. 2017 (Fashion-MNIST), IDX format",
    )
    images = Dataset(train=make_split(x[keep], y[keep]), val=make_split(x[held], y[held]), test=make_split(x_test, y_test), meta=meta)
    return _as_variant(images, variant, name)


@register_family("mnist", kind="image", summary="MNIST or Fashion-MNIST IDX files (gzipped or not) from a folder", argument="DIR")
def load_mnist(folder: str) -> Dataset:
    return _mnist(folder, f"mnist:{folder}", "image")


@register_family("seqmnist", kind="series", summary="MNIST from a folder, read as 784-step pixel sequences (sequential MNIST)", argument="DIR")
def load_seqmnist(folder: str) -> Dataset:
    return _mnist(folder, f"seqmnist:{folder}", "seq")


@register_family("pmnist", kind="series", summary="MNIST from a folder, its pixels in one fixed random order (permuted MNIST)", argument="DIR")
def load_pmnist(folder: str) -> Dataset:
    return _mnist(folder, f"pmnist:{folder}", "perm")

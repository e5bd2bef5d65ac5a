"""The two built-in data sets: shapes, splits, determinism, offline generation, errors."""

import random

import numpy as np
import pytest
import torch

import nncompare
from nncompare.data import list_sources, load_dataset


def test_registry_lists_the_builtins():
    assert [s.name for s in list_sources()] == ["digits", "mnist1d", "pdigits", "seqdigits", "text"]


def test_unknown_data_set_lists_valid_names():
    with pytest.raises(nncompare.UserError, match="unknown data set 'mnist2d'.*did you mean 'mnist1d'.*valid choices: digits, mnist1d, pdigits, seqdigits, text, adding:T, copy:T, mnist:DIR"):
        load_dataset("mnist2d")


def test_mnist1d_shapes_and_splits():
    d = load_dataset("mnist1d")
    assert d.meta.kind == "series" and d.meta.task == "classify" and d.meta.n_classes == 10
    assert d.meta.input_shape == (40, 1)
    assert d.sizes() == {"train": 3600, "val": 400, "test": 1000}
    assert d.train.x.shape == (3600, 40, 1) and d.train.x.dtype == torch.float32
    assert d.train.y.dtype == torch.int64
    # validation is stratified: each class holds its share (10%) of the published training set
    val_counts = torch.bincount(d.val.y, minlength=10)
    all_counts = val_counts + torch.bincount(d.train.y, minlength=10)
    assert ((val_counts - 0.1 * all_counts).abs() <= 1).all()


def test_mnist1d_is_the_published_generator_output_and_cached():
    """Train+val is exactly make_dataset's 4000 training examples; test is its 1000, in order."""
    from mnist1d.data import get_dataset_args, make_dataset

    ref = make_dataset(get_dataset_args())
    d = load_dataset("mnist1d")
    np.testing.assert_allclose(d.test.x[:, :, 0].numpy(), ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(d.test.y.numpy(), ref["y_test"])
    ours = torch.cat([d.train.x, d.val.x])[:, :, 0].numpy()
    ours_sorted = ours[np.lexsort(ours.T)]
    theirs = ref["x"].astype(np.float32)
    np.testing.assert_allclose(ours_sorted, theirs[np.lexsort(theirs.T)])
    again = load_dataset("mnist1d")
    assert torch.equal(again.train.x, d.train.x) and torch.equal(again.val.y, d.val.y)


def test_generating_mnist1d_leaves_global_random_state_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_CACHE", str(tmp_path))  # empty cache: forces generation
    np.random.seed(123)
    random.seed(123)
    load_dataset("mnist1d")
    after_np, after_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    assert (np.random.rand(), random.random()) == (after_np, after_py)
    assert (tmp_path / "mnist1d-default-seed42.npz").exists()


def test_damaged_cache_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_CACHE", str(tmp_path))
    (tmp_path / "mnist1d-default-seed42.npz").write_bytes(b"not a zip file")
    d = load_dataset("mnist1d")
    assert d.sizes()["test"] == 1000


def test_digits_fixed_stratified_split():
    d = load_dataset("digits")
    assert d.meta.kind == "image" and d.meta.input_shape == (1, 8, 8)
    sizes = d.sizes()
    assert sum(sizes.values()) == 1797
    assert sizes == {"train": 1077, "val": 360, "test": 360}
    for split in (d.train, d.val, d.test):
        assert set(split.y.tolist()) == set(range(10))  # every class in every split
        assert float(split.x.min()) >= 0 and float(split.x.max()) <= 1
    again = load_dataset("digits")
    assert torch.equal(again.test.x, d.test.x)
    # no image appears in two splits (digits has a handful of exact duplicates, so compare indices via rows)
    rows = lambda s: {tuple(r) for r in s.x.flatten(1).tolist()}
    assert len(rows(d.train) & rows(d.test)) <= 2

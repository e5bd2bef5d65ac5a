"""UCR/UEA archive through aeon: bundled sets offline, published splits, layout, normalisation, errors.

Every test is offline: a fixture makes any socket use fail, so a download attempt fails at once.
"""

import json
import socket

import numpy as np
import pytest
import torch
from aeon.datasets import load_classification

import nncompare
from nncompare.data import list_families, load_dataset
from nncompare.data import ucr
from nncompare.train import TrainConfig


def _no_network(*args, **kwargs):
    raise OSError("network disabled in tests")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Any attempt to reach the network fails deterministically, before a packet leaves."""
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A fresh cache folder for this test (downloaded files and converted arrays go there)."""
    monkeypatch.setenv("NNCOMPARE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def aeon_split(name, split):
    """What aeon itself loads from its bundled files: X (N, C, L) and y as aeon's label strings."""
    X, y = load_classification(name, split=split)
    return X, y


def znorm_steps_last(X):
    """Reference: per series, per channel z-normalisation of an (N, C, L) array -> (N, L, C)."""
    mean = X.mean(axis=2, keepdims=True)
    std = X.std(axis=2, keepdims=True)
    return ((X - mean) / std).transpose(0, 2, 1)  # (N, L, C)


# -- bundled sets ----------------------------------------------------------------------------------------
def test_bundled_names_include_the_classification_sets_aeon_ships():
    names = ucr.bundled_ucr_names()
    for name in ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels", "OSULeaf"):
        assert name in names
    assert "Covid3Month" not in names and "CardanoSentiment" not in names  # regression sets
    assert "UnitTest" not in names  # aeon's test fixture


def test_gunpoint_keeps_the_published_split_and_carves_val_from_train():
    ds = load_dataset("ucr:GunPoint")
    X_train, _ = aeon_split("GunPoint", "train")
    X_test, y_test = aeon_split("GunPoint", "test")
    assert X_train.shape == (50, 1, 150) and X_test.shape == (150, 1, 150)
    assert ds.meta.input_shape == (150, 1) and ds.meta.n_classes == 2
    assert ds.sizes() == {"train": 40, "val": 10, "test": 150}
    assert ds.train.x.shape == (40, 150, 1) and ds.train.x.dtype == torch.float32
    assert ds.train.lengths is None and ds.val.lengths is None and ds.test.lengths is None
    # the test split is aeon's test data, in order, after the same normalisation
    np.testing.assert_allclose(ds.test.x.numpy(), znorm_steps_last(X_test), atol=1e-5)
    assert ds.test.y.tolist() == [int(v) - 1 for v in y_test]  # labels "1", "2" -> 0, 1
    # train + val are exactly the published train, each series once
    expected = znorm_steps_last(X_train)[:, :, 0]  # (50, L)
    ours = np.concatenate([ds.train.x.numpy(), ds.val.x.numpy()])[:, :, 0]  # (50, L)
    distance = np.abs(ours[:, None, :] - expected[None, :, :]).max(axis=2)  # (50 ours, 50 aeon's)
    match = distance.argmin(axis=1)
    assert sorted(match.tolist()) == list(range(50)) and distance.min(axis=1).max() < 1e-5
    # stratified: both classes in val
    assert sorted(set(ds.val.y.tolist())) == [0, 1]


def test_meta_names_the_source_and_the_archive():
    meta = load_dataset("ucr:GunPoint").meta
    assert meta.name == "ucr:GunPoint" and meta.kind == "series" and meta.task == "classify"
    assert meta.class_names == ["1", "2"]
    assert "40 train / 10 val" in meta.description and "150 test" in meta.description
    assert "Dau et al. 2019" in meta.reference and "aeon" in meta.reference
    json.dumps(meta.to_dict())  # stored with every run: plain JSON types only


def test_every_series_is_z_normalised_and_normalize_false_keeps_raw_values():
    ds = load_dataset("ucr:GunPoint")
    x = ds.train.x.double()
    np.testing.assert_allclose(x.mean(dim=1).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(dim=1, unbiased=False).numpy(), 1.0, atol=1e-4)
    raw = load_dataset("ucr:GunPoint", normalize=False)
    X_test, _ = aeon_split("GunPoint", "test")
    np.testing.assert_allclose(raw.test.x.numpy(), X_test.transpose(0, 2, 1), rtol=1e-6)
    assert torch.equal(raw.train.y, ds.train.y)  # same split either way
    # GunPoint is published already z-normalised; BasicMotions (accelerometer units) is not
    raw_motion = load_dataset("ucr:BasicMotions", normalize=False)
    X_motion, _ = aeon_split("BasicMotions", "test")
    np.testing.assert_allclose(raw_motion.test.x.numpy(), X_motion.transpose(0, 2, 1), rtol=1e-6)
    assert raw_motion.test.x.std(dim=1).max() > 2.0
    # multivariate: each channel standardised with the training split's statistics, not per series
    normed = load_dataset("ucr:BasicMotions").train.x.double().reshape(-1, 6)  # (N*L, C)
    np.testing.assert_allclose(normed.mean(dim=0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.std(dim=0, unbiased=False).numpy(), 1.0, atol=1e-4)


def test_basicmotions_is_multivariate_with_word_labels():
    ds = load_dataset("ucr:BasicMotions")
    assert ds.meta.input_shape == (100, 6) and ds.train.x.shape[1:] == (100, 6)
    assert ds.sizes() == {"train": 32, "val": 8, "test": 40}
    # aeon lower-cases labels; class_names keep the archive's spelling, sorted
    assert ds.meta.class_names == ["Badminton", "Running", "Standing", "Walking"]
    X_test, y_test = aeon_split("BasicMotions", "test")
    ids = {"badminton": 0, "running": 1, "standing": 2, "walking": 3}
    assert ds.test.y.tolist() == [ids[v] for v in y_test]
    raw_train = load_dataset("ucr:BasicMotions", normalize=False).train.x.double().reshape(-1, 6).numpy()
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    np.testing.assert_allclose(ds.test.x.numpy(), (X_test.transpose(0, 2, 1) - mean) / std, atol=1e-4)


def test_japanese_vowels_varying_length_is_padded_at_the_end_and_normalised_over_real_steps():
    ds = load_dataset("ucr:JapaneseVowels")
    raw = load_dataset("ucr:JapaneseVowels", normalize=False)
    real_train = np.concatenate([raw.train.x[i, :n].double().numpy() for i, n in enumerate(raw.train.lengths.tolist())])
    mean, std = real_train.mean(axis=0), real_train.std(axis=0)  # per channel, over real training steps
    X_test, _ = aeon_split("JapaneseVowels", "test")  # list of (C=12, L_i)
    longest = max(max(s.shape[1] for s in X_test), max(s.shape[1] for s in aeon_split("JapaneseVowels", "train")[0]))
    assert ds.meta.input_shape == (longest, 12) == (29, 12)
    for split in (ds.train, ds.val, ds.test):
        assert split.lengths is not None and split.lengths.dtype == torch.int64 and len(split.lengths) == len(split)
    assert ds.test.lengths.tolist() == [s.shape[1] for s in X_test]
    for i in (0, 1, 100, len(X_test) - 1):
        n = X_test[i].shape[1]
        real = X_test[i].T  # (L_i, C)
        expected = (real - mean) / std
        np.testing.assert_allclose(ds.test.x[i, :n].numpy(), expected, atol=1e-4)
        assert torch.all(ds.test.x[i, n:] == 0)  # padding stays exactly zero
    n = X_test[0].shape[1]
    np.testing.assert_allclose(raw.test.x[0, :n].numpy(), X_test[0].T, rtol=1e-6)
    assert torch.all(raw.test.x[0, n:] == 0)


def test_names_are_matched_ignoring_case():
    ds = load_dataset("ucr:gunpoint")
    assert ds.meta.name == "ucr:GunPoint" and ds.sizes() == {"train": 40, "val": 10, "test": 150}
    assert load_dataset("ucr:ITALYPOWERDEMAND").meta.input_shape == (24, 1)


def test_numeric_labels_sort_as_numbers():
    ds = load_dataset("ucr:PickupGestureWiimoteZ")  # labels "1".."10", and varying length
    assert ds.meta.class_names == [str(i) for i in range(1, 11)]
    _, y_test = aeon_split("PickupGestureWiimoteZ", "test")
    assert ds.test.y.tolist() == [int(v) - 1 for v in y_test]
    assert ds.test.lengths is not None


# -- names that are not bundled ------------------------------------------------------------------------
def test_an_archive_set_that_is_not_bundled_fails_offline_naming_the_bundled_ones(own_cache):
    with pytest.raises(nncompare.UserError) as err:
        load_dataset("ucr:Coffee")  # a real archive set, not shipped with aeon: aeon tries to download it
    message = str(err.value)
    assert message.startswith("ucr:Coffee is not bundled with aeon and could not be downloaded (")
    assert "network disabled in tests" in message
    assert "bundled sets that work offline: " in message and "GunPoint" in message and "JapaneseVowels" in message
    assert "\n" not in message


def test_an_unknown_name_is_refused_with_a_suggestion(own_cache):
    with pytest.raises(nncompare.UserError, match=r"ucr:GunPiont is not bundled.*did you mean 'ucr:GunPoint'\?.*ArrowHead, BasicMotions"):
        load_dataset("ucr:GunPiont")
    with pytest.raises(nncompare.UserError, match="not an archive name"):
        load_dataset("ucr:../GunPoint")


def test_options_other_than_normalize_are_refused():
    with pytest.raises(nncompare.UserError, match="takes no option scale; it takes options: normalize"):
        load_dataset("ucr:GunPoint", scale=2)


# -- a downloaded set, simulated by files aeon finds in nncompare's cache --------------------------------
def write_ts(folder, name, rows, length, labels=("Up", "Down")):
    """A small univariate .ts file pair as the archive publishes them (TRAIN and TEST the same)."""
    header = (
        f"@problemName {name}\n@timeStamps false\n@missing true\n@univariate true\n@equalLength true\n"
        f"@seriesLength {length}\n@classLabel true {' '.join(labels)}\n@data\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("TRAIN", "TEST"):
        (folder / f"{name}_{part}.ts").write_text(header + "\n".join(rows) + "\n")


def test_a_downloaded_set_loads_from_the_cache_and_trailing_nan_is_end_padding(own_cache):
    rows = [f"{i},{i + 1},{i + 3},NaN,NaN:Up" for i in range(5)] + [f"{i},{2 * i},{i},{i},{-i}:Down" for i in range(1, 6)]
    write_ts(own_cache / "ucr" / "ToyGesture", "ToyGesture", rows, 5)
    ds = load_dataset("ucr:ToyGesture")
    assert ds.meta.class_names == ["Down", "Up"] and ds.meta.input_shape == (5, 1)
    assert ds.test.lengths.tolist() == [3] * 5 + [5] * 5
    assert ds.test.y.tolist() == [1] * 5 + [0] * 5
    first = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(ds.test.x[0, :3, 0].numpy(), (first - first.mean()) / first.std(), atol=1e-6)
    assert torch.all(ds.test.x[:5, 3:] == 0) and not torch.isnan(ds.test.x).any()
    # converted arrays are cached: a second load reads the .npz, without the .ts files
    assert list((own_cache / "ucr-arrays").glob("ToyGesture-aeon*.npz"))
    for f in (own_cache / "ucr" / "ToyGesture").iterdir():
        f.unlink()
    again = load_dataset("ucr:ToyGesture")
    assert torch.equal(again.test.x, ds.test.x) and again.meta.class_names == ["Down", "Up"]


def test_missing_values_inside_a_series_are_refused(own_cache):
    rows = ["1,NaN,3,4,5:Up", "1,2,3,4,5:Up", "5,4,3,2,1:Down", "5,4,3,2,0:Down"]
    write_ts(own_cache / "ucr" / "ToyGaps", "ToyGaps", rows, 5)
    with pytest.raises(nncompare.UserError, match=r"ucr:ToyGaps has missing values \(NaN\) inside 1 of its series.*ucr:ToyGaps_nmv"):
        load_dataset("ucr:ToyGaps")


def test_a_constant_series_becomes_zeros_not_nan():
    x = np.array([[[2.0], [2.0], [2.0], [0.0]], [[1.0], [3.0], [1.0], [3.0]]])  # (N=2, L=4, C=1)
    out = ucr.z_normalize(x, np.array([3, 4]))
    assert out[0].tolist() == [[0.0]] * 4
    np.testing.assert_allclose(out[1, :, 0], [-1.0, 1.0, -1.0, 1.0])


# -- registry and the whole pipeline ------------------------------------------------------------------------
def test_the_family_is_listed():
    (family,) = [f for f in list_families() if f.name == "ucr:NAME"]
    assert family.kind == "series" and "aeon" in family.summary


def test_a_comparison_runs_on_a_bundled_set_and_stores_metrics(tmp_path):
    result = nncompare.compare(
        "ucr:ItalyPowerDemand", models=["mlp", "cnn"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1
    )
    assert {(r["model"], r["status"]) for r in result.runs} == {("mlp", "done"), ("cnn", "done")}
    for model in ("mlp", "cnn"):
        metrics = json.loads((result.folder / f"{model}-seed0" / "metrics.json").read_text())
        assert 0.0 <= metrics["test_acc"] <= 1.0
    assert result.config["sizes"] == {"train": 53, "val": 14, "test": 1029}
    assert result.config["dataset_meta"]["input_shape"] == [24, 1]

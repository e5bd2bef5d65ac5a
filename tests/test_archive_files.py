"""Files of the UCR/UEA archive given by path (.ts, .arff, the text format of .txt / .tsv / no extension):
a TRAIN/TEST pair keeps the published split and gives what `ucr:NAME` gives, a file alone is split as
other user files are, and bad files are one-line errors."""

import json
import shutil

import numpy as np
import pytest
import torch

from nncompare import UserError
from nncompare.data import load_dataset
from nncompare.data.ucr import _bundled_files


def same(a, b):
    return all(torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(getattr(a, s).y, getattr(b, s).y) for s in ("train", "val", "test"))


def write_ts(path, series, labels, classes=("a", "b")):
    """A univariate .ts file as the archive writes them (equal or varying length)."""
    equal = len({len(s) for s in series}) == 1
    head = ["@problemName test", "@timeStamps false", "@univariate true", f"@equalLength {str(equal).lower()}", f"@classLabel true {' '.join(classes)}", "@data"]
    path.write_text("\n".join(head + [",".join(f"{v:.6f}" for v in s) + f":{lab}" for s, lab in zip(series, labels)]) + "\n")
    return path


def write_text_format(path, series, labels, sep=","):
    """The archive's text format: the label first, then the values; shorter series padded with NaN."""
    length = max(len(s) for s in series)
    rows = [[str(lab), *(f"{v:.6f}" for v in s), *(["NaN"] * (length - len(s)))] for s, lab in zip(series, labels)]
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")
    return path


def toy(n, seed, lengths=None):
    rng = np.random.default_rng(seed)
    labels = [i % 2 for i in range(n)]
    series = [rng.normal(size=(lengths[i] if lengths else 20)) + 2 * lab for i, lab in enumerate(labels)]
    return series, labels


def test_a_ts_pair_gives_what_ucr_name_gives_and_a_file_alone_is_split(tmp_path):
    train, test = _bundled_files()["GunPoint"]
    for f in (train, test):
        shutil.copy(f, tmp_path / f.name)
    from_files = load_dataset(str(tmp_path / "GunPoint_TEST.ts"))  # either file of the pair names it
    assert same(load_dataset("ucr:GunPoint"), from_files)
    assert "150 test (published)" in from_files.meta.description
    assert same(from_files, load_dataset(str(tmp_path)))  # the folder the archive's download unpacks
    (tmp_path / "GunPoint_TEST.ts").unlink()
    alone = load_dataset(str(tmp_path / "GunPoint_TRAIN.ts"))
    assert alone.sizes() == {"train": 32, "val": 8, "test": 10}  # 50 series: 20% test, then 20% of the rest
    assert "one file: stratified" in alone.meta.description


@pytest.mark.parametrize("sep, suffix", [(",", ".txt"), ("\t", ".tsv"), (" ", "")])
def test_the_text_format_pair_reads_as_the_same_series_as_ts_files(tmp_path, sep, suffix):
    lengths = [20 if i % 4 else 15 for i in range(24)]  # some shorter series, NaN-padded in the text format
    (trs, trl), (tes, tel) = toy(24, 0, lengths), toy(16, 1, lengths[:16])
    write_ts(tmp_path / "T_TRAIN.ts", trs, ["ab"[k] for k in trl])
    write_ts(tmp_path / "T_TEST.ts", tes, ["ab"[k] for k in tel])
    write_text_format(tmp_path / f"U_TRAIN{suffix}", trs, [k + 1 for k in trl], sep)
    write_text_format(tmp_path / f"U_TEST{suffix}", tes, [k + 1 for k in tel], sep)
    ts, text = load_dataset(str(tmp_path / "T_TRAIN.ts")), load_dataset(str(tmp_path / f"U_TRAIN{suffix}"))
    assert text.meta.class_names == ["1", "2"] and ts.meta.class_names == ["a", "b"]
    assert text.sizes() == ts.sizes() == {"train": 19, "val": 5, "test": 16}
    for part in ("train", "val", "test"):
        a, b = getattr(ts, part), getattr(text, part)
        assert torch.equal(a.y, b.y) and torch.equal(a.lengths, b.lengths)
        assert torch.allclose(a.x, b.x, atol=1e-5)
    assert 15 in text.train.lengths.tolist()


def test_a_csv_pair_with_a_header_stays_a_csv(tmp_path):
    for part, seed in (("TRAIN", 0), ("TEST", 1)):
        series, labels = toy(20, seed)
        rows = ["label," + ",".join(f"t{j}" for j in range(20))] + [f"{lab}," + ",".join(f"{v:.4f}" for v in s) for s, lab in zip(series, labels)]
        (tmp_path / f"D_{part}.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(str(tmp_path / "D_TRAIN.csv"))
    assert sum(ds.sizes().values()) == 20  # only this file, split on its own, as any CSV


def test_bad_archive_files_are_one_line_errors(tmp_path):
    def refused(path, *fragments):
        with pytest.raises(UserError) as e:
            load_dataset(str(path))
        assert "\n" not in str(e.value) and all(f in str(e.value) for f in fragments), str(e.value)

    regression = tmp_path / "R_TRAIN.ts"
    regression.write_text("@problemName r\n@univariate true\n@equalLength true\n@targetLabel true\n@data\n1,2,3:0.5\n2,3,4:1.5\n")
    refused(regression, "holds 2 series; too few")
    (tmp_path / "R_TEST.ts").write_text("@problemName r\n@univariate true\n@equalLength true\n@classLabel true a b\n@data\n1,2,3:a\n2,3,4:b\n")
    refused(tmp_path / "R_TEST.ts", "disagree on the problem", "@targetLabel true")
    write_ts(tmp_path / "One_TRAIN.ts", [np.zeros(5)], ["a"])
    write_ts(tmp_path / "One_TEST.ts", [np.zeros(5), np.ones(5)], ["a", "b"])
    refused(tmp_path / "One_TEST.ts", "One_TRAIN.ts' holds 1 series; a TRAIN file needs at least 2")
    empty = tmp_path / "E.ts"
    empty.write_text("garbage\n")
    refused(empty, "holds no series")
    words = tmp_path / "W.txt"
    words.write_text("1,2,3\n2,x,4\n")
    refused(words, "line 2 holds 'x', which is not a number")
    prose = tmp_path / "notes.txt"
    prose.write_text("words, not numbers\n" * 10)
    refused(prose, "characters; at least")  # read as text, and refused there for its length


def test_predict_reads_a_ts_file(tmp_path):
    import csv

    import nncompare
    from nncompare.predict import predict_file
    from nncompare.train import TrainConfig

    (trs, trl), (tes, tel) = toy(30, 0), toy(10, 1)
    write_ts(tmp_path / "P_TRAIN.ts", trs, ["ab"[k] for k in trl])
    write_ts(tmp_path / "P_TEST.ts", tes, ["ab"[k] for k in tel])
    result = nncompare.compare(str(tmp_path / "P_TRAIN.ts"), models=["mlp"], seeds=1, config=TrainConfig(max_epochs=20), store=tmp_path / "store", workers=1, reference=False)
    out = predict_file(result.folder / "mlp-seed0", str(tmp_path / "P_TEST.ts"), out=tmp_path / "pred.csv")
    rows = list(csv.reader(open(tmp_path / "pred.csv")))
    assert out["n"] == 10 and rows[0][:3] == ["input", "label", "predicted"] and [r[1] for r in rows[1:]] == ["ab"[k] for k in tel]
    assert out["accuracy"] == pytest.approx(result.rows[0]["score_mean"])  # the same test series, z-normalised as in training


def test_predict_on_a_varying_length_multivariate_pair_scores_as_the_run_did(tmp_path):
    """JapaneseVowels: 12 channels standardised with the training split's statistics, 7-29 steps. Its
    TEST file, shorter series and all, gets the same preprocessing, padding and lengths as in training."""
    import nncompare
    from nncompare.predict import predict_file
    from nncompare.train import TrainConfig

    train, test = _bundled_files()["JapaneseVowels"]
    for f in (train, test):
        shutil.copy(f, tmp_path / f.name)
    result = nncompare.compare(str(tmp_path / train.name), models=["cnn"], seeds=1, config=TrainConfig(max_epochs=2), store=tmp_path / "store", workers=1, reference=False)
    run = nncompare.load_run(result.folder / "cnn-seed0")
    assert run.meta.varying_length and len(run.meta.channel_scaling["mean"]) == 12
    out = predict_file(run.path, str(tmp_path / test.name), out=tmp_path / "pred.csv")
    assert out["n"] == 370 and out["accuracy"] == pytest.approx(result.rows[0]["score_mean"])

    data = run.dataset().test
    short = data.lengths < 29
    x, lengths = data.x[short].numpy(), data.lengths[short].numpy()
    padded = run.predict_proba(x, lengths)
    assert padded.shape == (int(short.sum()), 9)
    n = int(lengths.min())  # series of n steps given as an array of n steps: padded by predict itself
    assert np.allclose(run.predict_proba(x[:, :n]), run.predict_proba(x[:, :n], np.full(len(x), n)))
    with pytest.raises(UserError, match="`lengths` must be whole numbers from 1 to 29"):
        run.predict(x, lengths + 30)
    long = [np.zeros((40, 12))]  # longer than any training series
    from nncompare.data.inputs import fit_to_run

    with pytest.raises(UserError, match="series 0 has 40 steps; this run reads series of at most 29 steps"):
        fit_to_run(long, ["0"], run.meta, "new.ts")


def test_a_run_of_one_length_refuses_shorter_series_and_lengths(tmp_path):
    import nncompare
    from nncompare.predict import predict_file
    from nncompare.train import TrainConfig

    (trs, trl), (tes, tel) = toy(30, 0), toy(10, 1, [20] * 9 + [15])
    write_ts(tmp_path / "P_TRAIN.ts", trs, ["ab"[k] for k in trl])
    new = write_ts(tmp_path / "new.ts", tes, ["ab"[k] for k in tel])
    result = nncompare.compare(str(tmp_path / "P_TRAIN.ts"), models=["cnn"], seeds=1, config=TrainConfig(max_epochs=2), store=tmp_path / "store", workers=1, reference=False)
    run = nncompare.load_run(result.folder / "cnn-seed0")
    assert not run.meta.varying_length and not run.meta.channel_scaling
    with pytest.raises(UserError, match="series 9 has 15 steps; this run reads series of 20 steps"):
        predict_file(run.path, str(new), out=tmp_path / "pred.csv")
    assert not (tmp_path / "pred.csv").exists()
    with pytest.raises(UserError, match="trained on series of one length, so it takes no `lengths`"):
        run.predict(np.zeros((2, 20)), [20, 10])


def test_predict_reads_shorter_series_from_a_npz_as_from_an_archive_file(tmp_path):
    """A run on series of varying length: a .npz of fewer steps than its longest, or padded with an
    array `lengths`, predicts as the same series read from a .ts file (z-normalised over real steps)."""
    import csv

    import nncompare
    from nncompare.predict import predict_file
    from nncompare.train import TrainConfig

    (trs, trl), (tes, tel) = toy(30, 0, [20, 14] * 15), toy(10, 1, [20, 12] * 5)
    write_ts(tmp_path / "P_TRAIN.ts", trs, ["ab"[k] for k in trl])
    new = write_ts(tmp_path / "new.ts", tes, ["ab"[k] for k in tel])
    result = nncompare.compare(str(tmp_path / "P_TRAIN.ts"), models=["cnn"], seeds=1, config=TrainConfig(max_epochs=3), store=tmp_path / "store", workers=1, reference=False)
    run = nncompare.load_run(result.folder / "cnn-seed0")
    assert run.meta.varying_length and run.meta.input_shape[0] == 20

    def predicted(path):
        predict_file(run.path, str(path), out=tmp_path / "pred.csv")
        return [row[-3:] for row in csv.reader(open(tmp_path / "pred.csv"))][1:]  # the predicted class and its two probabilities

    padded = np.zeros((10, 20))
    for i, s in enumerate(tes):
        padded[i, : len(s)] = np.round(s, 6)  # as write_ts stores them
    padded[1::2, 12:] = 99.0  # whatever the padding holds, `lengths` says where the series end
    np.savez(tmp_path / "padded.npz", X=padded, lengths=np.array([len(s) for s in tes]))
    assert predicted(tmp_path / "padded.npz") == predicted(new)

    short = write_ts(tmp_path / "short.ts", [s[:12] for s in tes], ["ab"[k] for k in tel])
    np.savez(tmp_path / "short.npz", X=np.round(np.stack([s[:12] for s in tes]), 6))  # 12 of the run's 20 steps: padded by predict
    assert predicted(tmp_path / "short.npz") == predicted(short)

    np.savez(tmp_path / "bad.npz", X=padded, lengths=np.full(10, 25))
    with pytest.raises(UserError, match="'.*bad.npz': `lengths` must be whole numbers from 1 to 20"):
        predict_file(run.path, str(tmp_path / "bad.npz"), out=tmp_path / "pred2.csv")
    np.savez(tmp_path / "few.npz", X=padded, lengths=np.full(3, 20))
    with pytest.raises(UserError, match="X has 10 series but `lengths` has 3"):
        predict_file(run.path, str(tmp_path / "few.npz"), out=tmp_path / "pred2.csv")
    assert not (tmp_path / "pred2.csv").exists()


def test_a_multivariate_run_stored_without_its_channel_statistics_gets_them_again(tmp_path):
    """Runs stored before meta.channel_scaling existed: predict recomputes the training split's
    statistics from the run's data set instead of feeding raw values; when that set cannot be read,
    one line says so and nothing is written."""
    import json

    import nncompare
    from nncompare.predict import predict_file
    from nncompare.train import TrainConfig

    train, test = _bundled_files()["BasicMotions"]
    shutil.copy(train, tmp_path / train.name)
    result = nncompare.compare(str(tmp_path / train.name), models=["cnn"], seeds=1, config=TrainConfig(max_epochs=3), store=tmp_path / "store", workers=1, reference=False)
    folder = result.folder / "cnn-seed0"
    out = predict_file(folder, str(test), out=tmp_path / "recorded.csv")
    assert out["accuracy"] == pytest.approx(result.rows[0]["score_mean"])
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    assert len(config["dataset_meta"].pop("channel_scaling")["mean"]) == 6
    config_file.write_text(json.dumps(config))  # as a run of 2026-12-05 stored it
    predict_file(folder, str(test), out=tmp_path / "pred.csv")
    assert (tmp_path / "pred.csv").read_text() == (tmp_path / "recorded.csv").read_text()  # the same probabilities, to the digit

    (tmp_path / train.name).unlink()
    with pytest.raises(UserError, match="did not record, and its data set cannot be loaded again"):
        predict_file(folder, str(test), out=tmp_path / "pred2.csv")
    assert not (tmp_path / "pred2.csv").exists()


def write_regression_ts(path, series, targets):
    """A univariate .ts file of the extrinsic regression archive: `@targetLabel true`, a number per series."""
    head = ["@problemName reg", "@timeStamps false", "@univariate true", "@equalLength true", "@targetLabel true", "@data"]
    path.write_text("\n".join(head + [",".join(f"{v:.6f}" for v in s) + f":{t:.6f}" for s, t in zip(series, targets)]) + "\n")
    return path


def test_a_regression_file_of_the_archive_is_compared_as_regression(tmp_path):
    rng = np.random.default_rng(0)
    series = rng.normal(size=(50, 30)).cumsum(axis=1)
    targets = 40 + 10 * (series[:, -5:].mean(axis=1) - series[:, :5].mean(axis=1))  # the rise: kept by z-normalisation
    write_regression_ts(tmp_path / "Fat_TRAIN.ts", series[:36], targets[:36])
    write_regression_ts(tmp_path / "Fat_TEST.ts", series[36:], targets[36:])
    ds = load_dataset(str(tmp_path / "Fat_TRAIN.ts"))
    assert ds.meta.task == "regress" and ds.meta.n_outputs == 1 and ds.meta.n_classes == 0
    assert ds.sizes() == {"train": 28, "val": 8, "test": 14}  # the published test, a random fifth of TRAIN to validate
    m, s = ds.meta.target_scaling["mean"], ds.meta.target_scaling["std"]
    train_targets = np.sort(ds.train.y.double().numpy() * s + m)
    assert m == pytest.approx(train_targets.mean(), rel=1e-6)  # the training split's statistics ...
    assert np.allclose(ds.test.y.double().numpy() * s + m, targets[36:], atol=1e-4)  # ... applied to the published test
    assert "a value per series (regression" in ds.meta.description and "@targetLabel true" in ds.meta.notes[0]
    # a whole comparison: the networks and MiniRocket's regressor scored by test MSE on the same split
    from nncompare.cli.main import main
    from nncompare.store import load_run

    store = tmp_path / "store"
    assert main(["compare", str(tmp_path / "Fat_TRAIN.ts"), "--models", "mlp,gru", "--seeds", "2", "--epochs", "3", "--store", str(store), "--quiet"]) == 0
    summary = json.loads(next(store.glob("*/summary.json")).read_text())
    assert {r["model"] for r in summary["rows"]} == {"mlp", "gru"} and all(r["score_name"] == "test MSE" for r in summary["rows"])
    assert summary["reference"]["model"] == "minirocket" and "ridge regressor" in summary["reference"]["description"]
    run = load_run(next(store.glob("*/gru-seed0")))
    x = ds.test.x.numpy()
    raw = run.model(torch.as_tensor(x)).detach().double().numpy().reshape(-1)
    assert np.allclose(run.predict(x), m + s * raw, atol=1e-4)  # predictions in the file's units
    # the two seeds together: the mean of their values, scored by MSE on the standardised targets
    other = load_run(next(store.glob("*/gru-seed1"))).model(torch.as_tensor(x)).detach().double().numpy().reshape(-1)
    want = float(np.mean(((raw + other) / 2 - ds.test.y.double().numpy()) ** 2))
    assert summary["ensembles"]["gru"]["score_name"] == "test MSE" and summary["ensembles"]["gru"]["score"] == pytest.approx(want, rel=1e-6)
    # the report puts predicted against true values where the confusion matrices would be, in the file's units
    page = next(store.glob("*/report.html")).read_text()
    rmse = float(np.sqrt(np.mean((m + s * raw - targets[36:]) ** 2)))
    assert "<h2>Predicted against true</h2>" in page and "Confusion matrices" not in page
    assert f"<td>gru</td><td>{rmse:.4g}</td>" in page and 'alt="predicted against true values"' in page

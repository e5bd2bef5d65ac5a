"""Taking a model out: the Python API's table and predictions, `nncompare export` (ONNX checked with
onnxruntime, TorchScript), `nncompare predict` on CSV / NPZ / image files, and one-line errors."""

import csv

import numpy as np
import pytest
import torch

import nncompare
from nncompare import UserError, load_run
from nncompare.cli.main import main
from nncompare.data import DatasetMeta
from nncompare.data.files import znormalise
from nncompare.export import export_model, max_difference
from nncompare.models import create_model, model_names
from nncompare.train import TrainConfig

KIND_METAS = {
    "series": DatasetMeta(name="toy-series", kind="series", task="classify", input_shape=(12, 2), n_classes=3),
    "image": DatasetMeta(name="toy-image", kind="image", task="classify", input_shape=(1, 6, 5), n_classes=4),
    "text": DatasetMeta(name="toy-text", kind="text", task="per_step", input_shape=(16,), n_classes=7),
}


def _inputs(meta, n):
    g = torch.Generator().manual_seed(1)
    if meta.kind == "text":
        return torch.randint(0, meta.n_classes, (n, *meta.input_shape), generator=g)
    return torch.randn((n, *meta.input_shape), generator=g)


@pytest.mark.parametrize("kind", list(KIND_METAS))
@pytest.mark.parametrize("name", model_names())
def test_onnx_export_of_every_model_on_every_kind_matches_torch(name, kind):
    pytest.importorskip("onnxruntime", reason="pip install 'nncompare[export]'")
    meta = KIND_METAS[kind]
    torch.manual_seed(0)
    model = create_model(name, meta).eval()
    data = export_model(model, meta, "onnx", _inputs(meta, 2))
    x = _inputs(meta, 9)  # another batch size than traced with: the batch axis is dynamic
    diff = max_difference(model, data, "onnx", x)
    assert diff is not None and diff < 1e-4, diff


@pytest.mark.parametrize("kind", list(KIND_METAS))
def test_torchscript_export_of_every_model_matches_torch(kind):
    meta = KIND_METAS[kind]
    for name in model_names():
        torch.manual_seed(0)
        model = create_model(name, meta).eval()
        data = export_model(model, meta, "torchscript", _inputs(meta, 2))
        assert max_difference(model, data, "torchscript", _inputs(meta, 9)) < 1e-5, name


# -- stored runs --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_comparison(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return nncompare.compare("digits", models=["mlp", "cnn"], seeds=1, config=TrainConfig(max_epochs=1), store=store, workers=1)


@pytest.fixture(scope="module")
def series_csv_run(tmp_path_factory):
    """A run trained on the user's own CSV of series: 2 classes, 90 series of 20 steps, raw values
    with an offset and a scale per series (which z-normalisation removes)."""
    folder = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 20)
    labels = np.array(["sine", "square"])[np.arange(90) % 2]
    x = np.stack([np.sin(t + rng.uniform(0, 1)) if lab == "sine" else np.sign(np.sin(t + rng.uniform(0, 1))) for lab in labels])
    x = x * rng.uniform(1, 5, (90, 1)) + rng.uniform(-10, 10, (90, 1))  # raw: offsets and scales differ
    path = folder / "train.csv"
    path.write_text("".join(f"{lab}," + ",".join(f"{v:.6f}" for v in row) + "\n" for lab, row in zip(labels, x)))
    result = nncompare.compare(str(path), models=["gru"], seeds=1, config=TrainConfig(max_epochs=3), store=folder / "store", workers=1)
    return load_run(result.folder / "gru-seed0"), x, labels, folder


def test_dataframe_holds_the_table_and_the_runs(digits_comparison):
    df = digits_comparison.dataframe()
    assert list(df.index) == ["mlp", "cnn"]
    for row in digits_comparison.rows:
        assert df.loc[row["model"], "score_mean"] == pytest.approx(row["score_mean"])
        assert df.loc[row["model"], "params"] == row["params"] and df.loc[row["model"], "n_done"] == 1
    runs = digits_comparison.dataframe(runs=True)
    assert len(runs) == 2 and set(runs["model"]) == {"mlp", "cnn"} and "test_acc" in runs
    assert digits_comparison.report_path is None  # report=False


def test_load_run_predicts_class_names_and_probabilities(digits_comparison):
    run = load_run(digits_comparison.folder / "mlp-seed0")
    data = run.dataset()
    names = run.predict(data.test.x.numpy())
    assert names.dtype == object and set(names) <= {str(i) for i in range(10)}
    assert np.mean(names == np.array([str(int(v)) for v in data.test.y])) == pytest.approx(run.metrics["test_acc"], abs=1e-9)
    proba = run.predict_proba(data.test.x[:5, 0].numpy())  # (N, H, W): one channel may be left out
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1)
    with pytest.raises(UserError, match=r"trained on \(N, 1, 8, 8\) images"):
        run.predict(np.zeros((3, 1, 7, 8)))
    with pytest.raises(UserError, match="NaN"):
        run.predict(np.full((1, 1, 8, 8), np.nan))


def test_export_cli_onnx_and_torchscript(digits_comparison, tmp_path, capsys):
    run_dir = digits_comparison.folder / "cnn-seed0"
    assert main(["export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "max abs difference 0.00e+00 on 64 test examples" in out
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    x = load_run(run_dir).dataset().test.x[:10]
    assert torch.equal(loaded(x), load_run(run_dir).model(x))
    pytest.importorskip("onnxruntime", reason="pip install 'nncompare[export]'")
    assert main(["export", str(run_dir)]) == 0  # onnx by default, beside the run
    out = capsys.readouterr().out
    diff = float(out.split("max abs difference ")[1].split()[0])
    assert (run_dir / "model.onnx").stat().st_size > 1000 and diff < 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(run_dir / "model.onnx"))
    got = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, load_run(run_dir).model(x).detach().numpy(), atol=1e-4)


def test_a_regression_run_predicts_and_exports_values_in_the_files_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 16))
    fat = 50 + 20 * x[:, :4].mean(axis=1)  # a quantity far from 0 and 1: standardised for training
    path = tmp_path / "fat.csv"
    path.write_text("fat," + ",".join(f"t{j}" for j in range(16)) + "\n" + "".join(f"{v:.4f}," + ",".join(f"{c:.4f}" for c in row) + "\n" for v, row in zip(fat, x)))
    assert main(["train", str(path), "--model", "mlp", "--epochs", "2", "--no-normalize", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    stored = load_run(tmp_path / "run")
    scale = stored.meta.target_scaling
    assert stored.meta.task == "regress" and 40 < scale["mean"] < 60
    inputs = torch.as_tensor(x[:8], dtype=torch.float32)[:, :, None]
    with torch.no_grad():
        raw = stored.model.eval()(inputs).double().numpy().reshape(-1)
    np.testing.assert_allclose(stored.predict(x[:8]), scale["mean"] + scale["std"] * raw, rtol=1e-6)
    assert main(["export", str(stored.path), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    assert "max abs difference 0.00e+00" in capsys.readouterr().out
    with torch.no_grad():
        exported = torch.jit.load(str(tmp_path / "m.pt"))(inputs).double().numpy().reshape(-1)
    np.testing.assert_allclose(exported, stored.predict(x[:8]), rtol=1e-5)  # the file's units, as predict


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_predict_csv_of_series_with_and_without_labels(series_csv_run, tmp_path, capsys):
    run, x, labels, folder = series_csv_run
    with_labels = folder / "train.csv"
    assert main(["predict", str(run.path), str(with_labels), "--out", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    rows = _read_csv(tmp_path / "p.csv")
    assert len(rows) == 90 and set(rows[0]) == {"input", "label", "predicted", "p_sine", "p_square"}
    proba = np.array([[float(r["p_sine"]), float(r["p_square"])] for r in rows])
    # the CSV path z-normalises each series as the loader did: the same numbers as the API on normalised inputs
    np.testing.assert_allclose(proba, run.predict_proba(znormalise(x[:, :, None])), atol=2e-6)
    accuracy = np.mean([r["predicted"] == r["label"] for r in rows])
    assert f"accuracy against the labels in {with_labels}: {100 * accuracy:.1f}%" in out
    bare = tmp_path / "bare.csv"  # values only: no label column
    bare.write_text("".join(",".join(f"{v:.6f}" for v in row) + "\n" for row in x[:7]))
    assert main(["predict", str(run.path), str(bare), "--out", str(tmp_path / "q.csv")]) == 0
    rows = _read_csv(tmp_path / "q.csv")
    assert len(rows) == 7 and "label" not in rows[0] and [r["input"] for r in rows] == [str(i) for i in range(1, 8)]
    np.testing.assert_allclose([float(r["p_square"]) for r in rows], proba[:7, 1], atol=2e-6)


def test_predict_npz_and_image_folder_for_an_image_run(digits_comparison, tmp_path):
    from PIL import Image

    run = load_run(digits_comparison.folder / "cnn-seed0")
    data = run.dataset()
    x, y = data.test.x[:12].numpy(), data.test.y[:12].numpy()
    np.savez(tmp_path / "in.npz", X=x, y=y)
    assert main(["predict", str(run.path), str(tmp_path / "in.npz"), "--out", str(tmp_path / "n.csv")]) == 0
    rows = _read_csv(tmp_path / "n.csv")
    np.testing.assert_allclose([[float(r[f"p_{k}"]) for k in range(10)] for r in rows], run.predict_proba(x), atol=2e-6)
    assert [r["label"] for r in rows] == [str(v) for v in y]
    images = tmp_path / "images"
    for i, (img, label) in enumerate(zip(x, y)):
        (images / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img[0] * 255).astype(np.uint8)).save(images / str(label) / f"{i}.png")
    assert main(["predict", str(run.path), str(images), "--out", str(tmp_path / "i.csv")]) == 0
    rows = _read_csv(tmp_path / "i.csv")
    assert len(rows) == 12 and all(r["label"] == r["input"].split("/")[0] for r in rows)
    by_name = {r["input"]: r for r in rows}
    for i, label in enumerate(y):
        r = by_name[f"{label}/{i}.png"]
        assert r["predicted"] == run.predict(x[i : i + 1])[0]  # PNG rounding moves probabilities, not the class


@pytest.mark.parametrize(
    "case, message",
    [
        ("no-run", "no run folder"),
        ("wrong-length", "this run reads series of 20 steps"),
        ("images-for-series", "holds images but this run was trained on series"),
        ("bad-extension", "unsupported extension"),
    ],
)
def test_predict_and_export_errors_are_one_line_exit_2(series_csv_run, tmp_path, capsys, case, message):
    run, x, labels, folder = series_csv_run
    run_dir, target = str(run.path), tmp_path / "in.csv"
    if case == "no-run":
        run_dir = str(tmp_path / "nothing")
        target.write_text("1,2,3\n")
    elif case == "wrong-length":
        target.write_text("1,2,3\n4,5,6\n")
    elif case == "images-for-series":
        from PIL import Image

        target = tmp_path / "one.png"
        Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(target)
    else:
        target = tmp_path / "in.parquet"
        target.write_text("x")
    assert main(["predict", run_dir, str(target), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "p.csv").exists()
    assert main(["export", run_dir, "--format", "keras"]) == 2
    assert "invalid choice" in capsys.readouterr().err

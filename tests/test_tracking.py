"""--mlflow: every run's parameters, metrics, history and files in MLflow, beside the store."""

import json
import sys

import pytest

import nncompare
from nncompare import UserError
from nncompare.cli.main import main
from nncompare.runs.tracking import tracking_uri
from nncompare.train import TrainConfig


def test_without_mlflow_the_option_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main(["compare", "digits", "--models", "mlp", "--epochs", "1", "--store", str(tmp_path / "s"), "--mlflow", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'nncompare[mlflow]'" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_a_folder_becomes_an_sqlite_store_and_uris_pass_through(tmp_path):
    uri, artifacts = tracking_uri(str(tmp_path / "mlruns"))
    assert uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}" and artifacts == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert tracking_uri("http://localhost:5000") == ("http://localhost:5000", None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        tracking_uri(str(tmp_path / "file"))


def test_compare_logs_each_run_to_mlflow(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="pip install 'nncompare[mlflow]'")
    from mlflow import MlflowClient

    # MLflow's folder store is quick to create (an SQLite one takes seconds of migrations); it is
    # refused unless allowed, since MLflow 3 keeps it for existing users only
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    result = nncompare.compare("digits", models=["mlp"], seeds=2, config=TrainConfig(max_epochs=2), store=tmp_path / "store", workers=1, mlflow=uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("nncompare")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((r for r in runs if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.data.params["seed"])
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.run_name == result.folder.name and parent.info.status == "FINISHED"
    assert parent.data.metrics["mlp.score_mean"] == pytest.approx(result.rows[0]["score_mean"])
    assert parent.data.metrics["mlp.seeds_together"] == pytest.approx(result.ensembles["mlp"]["score"])  # the two seeds predicting together
    for seed, child in enumerate(children):
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.info.status == "FINISHED"
        metrics = json.loads((result.folder / f"mlp-seed{seed}" / "metrics.json").read_text())
        assert child.data.params["seed"] == str(seed) and child.data.params["train.lr"] == "0.003"
        assert child.data.params["model.width"] == "None" and child.data.params["train.max_epochs"] == "2"
        assert child.data.metrics["test_acc"] == pytest.approx(metrics["test_acc"])
        history = client.get_metric_history(child.info.run_id, "epoch_val_loss")
        assert [h.step for h in history] == [1, 2]
        assert min(h.value for h in history) == pytest.approx(metrics["val_loss"])  # the best epoch's, kept
        assert sorted(a.path for a in client.list_artifacts(child.info.run_id)) == ["config.json", "history.csv", "metrics.json", "model.safetensors", "timing.json"]
    assert "summary.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]

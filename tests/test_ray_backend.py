"""The Ray backend: a comparison through a local Ray cluster gives the same runs as the local backend;
without Ray the option says how to install it."""

import json
import sys

import pytest

import nncompare
from nncompare import UserError
from nncompare.cli.main import main
from nncompare.store import Store
from nncompare.train import TrainConfig


def test_without_ray_the_option_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    assert main(["compare", "digits", "--models", "mlp", "--epochs", "1", "--store", str(tmp_path), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'nncompare[ray]'" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())  # refused before anything was stored


def test_backend_and_address_are_checked_first(tmp_path):
    with pytest.raises(UserError, match="unknown backend 'dask'"):
        nncompare.compare("digits", models=["mlp"], backend="dask", store=tmp_path)
    with pytest.raises(UserError, match="an address is for `backend='ray'`"):
        nncompare.compare("digits", models=["mlp"], address="auto", store=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="pip install 'nncompare[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield ray
    ray.shutdown()


def test_ray_cluster_gives_the_same_table_as_the_local_backend(local_ray, tmp_path):
    config = TrainConfig(max_epochs=1)
    local = nncompare.compare("digits", models=["mlp", "gru"], seeds=1, config=config, store=tmp_path / "local", workers=1)
    events = []
    remote = nncompare.compare("digits", models=["mlp", "gru"], seeds=1, config=config, store=tmp_path / "ray", backend="ray", progress=events.append)
    assert local_ray.is_initialized()  # the caller's Ray session is used, and left open
    key = lambda r: (r["model"], r["seed"])  # noqa: E731
    assert len(remote.runs) == 2 and all(r["status"] == "done" for r in remote.runs)
    for a, b in zip(sorted(local.runs, key=key), sorted(remote.runs, key=key)):
        for field in ("test_loss", "test_acc", "val_loss", "best_epoch", "epochs", "params"):
            assert a[field] == b[field], (a["model"], a["seed"], field)  # bit for bit: same seeds, same threads
    for a, b in zip(local.rows, remote.rows):
        assert (a["model"], a["score_mean"], a["score_std"]) == (b["model"], b["score_mean"], b["score_std"])
    assert remote.best == local.best
    # progress streamed back from the tasks, and every run written into the store and its index
    assert sum(e["event"] == "epoch" for e in events) == 2 and sum(e["event"] == "start" for e in events) == 2
    for r in remote.runs:
        run_dir = remote.folder / f"{r['model']}-seed{r['seed']}"
        assert json.loads((run_dir / "metrics.json").read_text())["test_loss"] == r["test_loss"]
        assert nncompare.load_run(run_dir).metrics["seed"] == r["seed"]
    assert len(Store(tmp_path / "ray").list_runs(remote.folder.name)) == 2
    assert json.loads((remote.folder / "comparison.json").read_text())["backend"] == {"name": "ray", "address": None}

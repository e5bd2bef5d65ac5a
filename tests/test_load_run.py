"""Reading a stored run back: the same model, and a clear error for anything tampered or missing."""

import json

import pytest
import torch

import nncompare
from nncompare import UserError, load_run
from nncompare.train import TrainConfig


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = nncompare.compare("digits", models=["cnn", "gru"], seeds=1, config=TrainConfig(max_epochs=1), store=store, workers=1)
    return result


def test_a_loaded_run_predicts_what_the_trained_model_scored(stored):
    for m in ("cnn", "gru"):
        run = load_run(stored.folder / f"{m}-seed0")
        assert not run.model.training
        data = run.dataset()
        with torch.no_grad():
            pred = run.model(data.test.x).argmax(-1)
        acc = (pred == data.test.y).float().mean().item()
        assert acc == pytest.approx(run.metrics["test_acc"], abs=1e-6)
        assert run.config["model"] == m and run.meta.n_classes == 10
        assert len(run.history) == run.metrics["epochs"] and isinstance(run.history[0]["train_loss"], float)


def test_tampered_truncated_or_missing_files_give_user_errors(stored, tmp_path):
    import shutil

    src = stored.folder / "cnn-seed0"
    cases = {}
    for name in ("truncated", "reshaped", "no-metrics", "bad-config"):
        d = tmp_path / name
        shutil.copytree(src, d)
        cases[name] = d
    raw = (src / "model.safetensors").read_bytes()
    (cases["truncated"] / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    cfg = json.loads((src / "config.json").read_text())
    bigger = {**cfg, "model_args": {**cfg["model_args"], "channels": cfg["model_args"]["channels"] * 2}}
    (cases["reshaped"] / "config.json").write_text(json.dumps(bigger))
    (cases["no-metrics"] / "metrics.json").unlink()
    (cases["bad-config"] / "config.json").write_text("{not json")
    messages = {}
    for name, d in cases.items():
        with pytest.raises(UserError) as e:
            load_run(d)
        messages[name] = str(e.value)
    assert "safetensors" in messages["truncated"]
    assert "does not match its config" in messages["reshaped"] and "is needed" in messages["reshaped"]
    assert "did not finish" in messages["no-metrics"]
    assert "corrupt" in messages["bad-config"]
    with pytest.raises(UserError, match="no run folder"):
        load_run(tmp_path / "nothing-here")


def test_a_tcn_stored_before_the_mean_readout_loads_with_the_readout_it_was_trained_with(tmp_path):
    """Runs stored before 2026-12-06 have no `readout` in their model_args and read their last step;
    the weights have the same shapes either way, so only the config tells them apart."""
    import shutil

    result = nncompare.compare("digits", models=["tcn"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path / "store", workers=1, reference=False)
    now = load_run(result.folder / "tcn-seed0")
    assert now.model.readout == "mean" == now.config["model_args"]["readout"]
    old = tmp_path / "old"
    shutil.copytree(result.folder / "tcn-seed0", old)
    config = json.loads((old / "config.json").read_text())
    del config["model_args"]["readout"]
    (old / "config.json").write_text(json.dumps(config))
    assert load_run(old).model.readout == "last"


def test_a_series_tcn_stored_before_batch_norm_was_its_default_loads_without_it(tmp_path):
    """Runs stored before 2026-12-06 have no `norm` in their model_args and were trained without batch
    norm; a run stored now records norm None, which on a whole series means batch norm."""
    import shutil

    result = nncompare.compare("adding:20", models=["tcn"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path / "store", workers=1, reference=False)
    now = load_run(result.folder / "tcn-seed0")
    assert now.config["model_args"]["norm"] is None
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in now.model.modules())
    old_store = tmp_path / "old-store"
    old_result = nncompare.compare("adding:20", models=["tcn"], seeds=1, config=TrainConfig(max_epochs=1), model_args={"tcn": {"norm": "none"}}, store=old_store, workers=1, reference=False)
    old = tmp_path / "old"
    shutil.copytree(old_result.folder / "tcn-seed0", old)
    config = json.loads((old / "config.json").read_text())
    del config["model_args"]["norm"]
    (old / "config.json").write_text(json.dumps(config))
    loaded = load_run(old)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in loaded.model.modules())

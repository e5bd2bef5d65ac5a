"""Ablation: the plain model, each bell alone and all together, with per-seed gains."""

import json

import pytest

from nncompare import UserError
from nncompare.runs.ablate import ablate, parse_bells
from nncompare.cli.main import main
from nncompare.train import TrainConfig


@pytest.mark.slow
def test_each_bell_alone_and_all_together_with_per_seed_gains(tmp_path):
    result = ablate("digits", "cnn", "norm,residual", seeds=2, config=TrainConfig(max_epochs=2), store=tmp_path, workers=1)
    assert [r["variant"] for r in result.rows] == ["plain", "+norm", "+residual", "+norm +residual"]
    plain, norm, residual, both = result.rows
    assert plain["model_args"] == {"dropout": 0.0, "norm": "none"} and norm["model_args"] == {"dropout": 0.0, "norm": "batch"}
    assert residual["model_args"] == {"dropout": 0.0, "norm": "none", "residual": True} and both["model_args"] == {"dropout": 0.0, "norm": "batch", "residual": True}
    for r in result.rows:
        diffs = [a - b for a, b in zip(r["scores"], plain["scores"])]
        assert r["gain_mean"] == pytest.approx(sum(diffs) / 2)
        assert len(r["scores"]) == 2
        stored = json.loads((tmp_path / r["folder"].split("/")[-1] / "cnn-seed0" / "config.json").read_text())
        assert stored["model_args"]["norm"] == r["model_args"]["norm"]
    assert plain["gain_mean"] == 0 and plain["gain_std"] == 0
    assert "+norm +residual" in result.table()


@pytest.mark.slow
def test_training_bells_change_the_config_not_the_model(tmp_path):
    result = ablate("digits", "lstm", ["dropout", "cosine"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1)
    assert [r["variant"] for r in result.rows] == ["plain", "+dropout", "+cosine", "+dropout +cosine"]
    cosine = result.rows[2]
    assert cosine["train"] == {"schedule": "cosine"} and cosine["model_args"] == {"dropout": 0.0, "recurrent_dropout": 0.0, "norm": "none"}
    stored = json.loads(next((tmp_path / cosine["folder"].split("/")[-1]).glob("lstm-seed0/config.json")).read_text())
    assert stored["train"]["schedule"] == "cosine"


@pytest.mark.parametrize(
    "model, bells, message",
    [
        ("lstm", "residual", "bell 'residual' does not apply to lstm; for lstm choose from norm, dropout, cosine, weight-decay, augment"),
        ("cnn", "wings", "unknown bell 'wings'"),
        ("cnn", "", "no bells given"),
        ("cnn", "norm,norm", "listed twice"),
    ],
)
def test_bad_bells_are_refused(model, bells, message):
    with pytest.raises(UserError, match=message):
        parse_bells(model, bells)


def test_norm_means_a_layer_normalised_cell_for_recurrent_models():
    from nncompare.runs.ablate import bell_model_args

    assert bell_model_args("lstm", "norm") == {"norm": "layer"} and bell_model_args("cnn", "norm") == {"norm": "batch"}


def test_cli_prints_the_ablation_table(tmp_path, capsys):
    assert main(["ablate", "digits", "--model", "mlp", "--bells", "dropout", "--seeds", "1", "--epochs", "1", "--workers", "1", "--store", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "plain" in out and "+dropout" in out and "gain vs plain" in out
    assert main(["ablate", "digits", "--model", "gru", "--bells", "residual", "--store", str(tmp_path)]) == 2
    assert "does not apply to gru" in capsys.readouterr().err

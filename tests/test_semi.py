"""Semi-supervised training: the labelled subset, the three methods, and what is refused."""

import json

import numpy as np
import pytest
import torch

import nncompare
from nncompare.cli.main import main
from nncompare.train import TrainConfig
from nncompare.train.semi import _ema, labelled_subset


def test_the_labelled_subset_is_stratified_fixed_and_disjoint():
    y = torch.arange(100) % 4
    labelled, unlabelled = labelled_subset(y, 20, 4)
    assert len(labelled) == 20 and len(unlabelled) == 80
    assert set(labelled).isdisjoint(unlabelled) and set(labelled) | set(unlabelled) == set(range(100))
    assert np.bincount(y[labelled].numpy()).tolist() == [5, 5, 5, 5]
    again, _ = labelled_subset(y, 20, 4)
    assert again.tolist() == labelled.tolist()


@pytest.mark.parametrize("n, message", [(3, "fewer than the 4 classes"), (100, "leaves nothing unlabelled"), (0, "positive whole number")])
def test_bad_label_counts_are_refused(n, message):
    with pytest.raises(nncompare.UserError, match=message):
        labelled_subset(torch.arange(100) % 4, n, 4)


def test_ema_moves_the_teacher_towards_the_student():
    teacher, student = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        teacher.weight.fill_(1.0), student.weight.fill_(3.0)
    _ema(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, torch.full((1, 2), 1.2))


@pytest.mark.parametrize("semi, column", [("none", None), ("pseudo", "pseudo_labels"), ("meanteacher", "consistency")])
def test_each_method_trains_on_the_labelled_subset_and_reports_it(semi, column):
    _, result = nncompare.train("digits", "cnn", seed=0, config=TrainConfig(labels=50, semi=semi, max_epochs=12))
    m = result.metrics
    assert (m["labelled"], m["semi"], m["epochs"]) == (50, semi, 12)
    assert m["labelled"] + m["unlabelled"] == len(nncompare.data.load_dataset("digits").train)
    assert 0 <= m["test_acc"] <= 1
    if column:
        assert column in result.history[-1]
    if semi == "pseudo":  # the warm-up (10% of the epochs, at least one) uses labelled data only
        assert result.history[0]["pseudo_labels"] == 0
    again = nncompare.train("digits", "cnn", seed=0, config=TrainConfig(labels=50, semi=semi, max_epochs=12))[1]
    assert again.metrics["test_loss"] == m["test_loss"]


def test_pseudo_labelling_uses_the_unlabelled_examples():
    # with 30 labels, the unlabelled digits must change what is learned
    cfg = dict(labels=30, max_epochs=40)
    only = nncompare.train("digits", "mlp", seed=0, config=TrainConfig(semi="none", **cfg))[1].metrics
    net, result = nncompare.train("digits", "mlp", seed=0, config=TrainConfig(semi="pseudo", **cfg))
    counts = [r["pseudo_labels"] for r in result.history]
    assert counts[:4] == [0] * 4 and max(counts) > 100  # after the warm-up, confident guesses join in
    assert result.metrics["test_loss"] != only["test_loss"]


@pytest.mark.parametrize(
    "data, cfg, message",
    [
        ("adding:20", dict(labels=10), "applies to classification"),
        ("digits", dict(labels=100, refit=True), "cannot be combined"),
        ("text", dict(labels=100, semi="meanteacher"), "applies to classification"),
        ("digits", dict(semi="pseudo"), "needs labels=N"),
    ],
)
def test_what_cannot_work_is_refused_before_anything_is_stored(tmp_path, data, cfg, message):
    with pytest.raises(nncompare.UserError, match=message):
        nncompare.compare(data, models=["mlp"], config=TrainConfig(**cfg), store=tmp_path)
    assert not any(p.is_dir() for p in tmp_path.iterdir()) if tmp_path.exists() else True


def test_cli_shows_supervised_only_beside_semi_supervised(tmp_path, capsys):
    code = main(["compare", "digits", "--models", "mlp", "--labels", "50", "--semi", "pseudo", "--seeds", "1", "--epochs", "5", "--workers", "1", "--store", str(tmp_path), "--quiet", "--no-report"])
    assert code == 0
    out = capsys.readouterr().out
    assert "supervised only vs pseudo" in out and "points" in out
    configs = [json.loads(p.read_text())["train"] for p in tmp_path.glob("*/mlp-seed0/config.json")]
    assert sorted(c["semi"] for c in configs) == ["none", "pseudo"] and all(c["labels"] == 50 for c in configs)

"""Each model's seeds predicting together (runs/ensemble.py): scored on the test split, stored in
summary.json, said under the table and in the report's verdict."""

import json

import numpy as np
import pytest
import torch

import nncompare
from nncompare.report.overview import verdict
from nncompare.results import ensemble_line
from nncompare.runs.ensemble import seed_ensembles
from nncompare.train import TrainConfig


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return nncompare.compare("digits", models=["mlp", "cnn"], seeds=2, config=TrainConfig(max_epochs=1), store=store, workers=1, report=True)


def test_the_seeds_together_are_the_mean_of_their_probabilities_on_the_test_split(two_seeds):
    dataset = nncompare.load_run(two_seeds.folder / "mlp-seed0").dataset()
    for model in ("mlp", "cnn"):
        probs = []
        for seed in (0, 1):
            run = nncompare.load_run(two_seeds.folder / f"{model}-seed{seed}")
            with torch.no_grad():
                probs.append(torch.softmax(run.model.eval()(dataset.test.x).double(), -1).numpy())
        want = float((np.mean(probs, 0).argmax(1) == dataset.test.y.numpy()).mean())
        got = two_seeds.ensembles[model]
        assert got["score_name"] == "test accuracy" and got["seeds"] == 2 and got["score"] == pytest.approx(want, abs=1e-12)
        singles = [r["test_acc"] for r in two_seeds.runs if r["model"] == model]
        assert got["train_seconds"] == pytest.approx(sum(r["train_seconds"] for r in two_seeds.runs if r["model"] == model))
        assert len(singles) == 2
    summary = json.loads((two_seeds.folder / "summary.json").read_text())
    assert summary["ensembles"] == json.loads(json.dumps(two_seeds.ensembles))
    line = ensemble_line(two_seeds.ensembles)
    assert line.startswith("each model's 2 seeds predicting together (the mean of their class probabilities): MLP ") and "×" in line
    assert line in two_seeds.table()
    report = (two_seeds.folder / "report.md").read_text()
    assert "seeds predicting together (the mean of their class probabilities) score" in report
    from nncompare.report.html import results_rows

    header, cells, _ = results_rows(summary)  # the report's table: a column beside one run's mean
    column = header.index("seeds together")
    assert {row[0]: row[column] for row in cells} == {m: f"{100 * e['score']:.1f}%" for m, e in two_seeds.ensembles.items()} | {row[0]: "-" for row in cells if "reference" in row[0]}
    assert "seeds together" in report


def test_a_model_with_one_finished_seed_has_no_ensemble(two_seeds, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(two_seeds.folder, folder)
    metrics = json.loads((folder / "cnn-seed1" / "metrics.json").read_text())
    (folder / "cnn-seed1" / "metrics.json").write_text(json.dumps({**metrics, "status": "diverged"}))
    dataset = nncompare.load_run(folder / "mlp-seed0").dataset()
    together = seed_ensembles(dataset, folder, ["mlp", "cnn"], [0, 1])
    assert set(together) == {"mlp"} and together["mlp"] == two_seeds.ensembles["mlp"]


def test_the_verdict_says_what_the_seeds_together_give_against_the_reference():
    rows = [
        {"model": "cnn", "score_name": "test accuracy", "score_mean": 0.85, "n_done": 3, "train_seconds": 20.0, "train_acc_mean": 1.0},
        {"model": "gru", "score_name": "test accuracy", "score_mean": 0.70, "n_done": 3, "train_seconds": 30.0, "train_acc_mean": 1.0},
    ]
    reference = {"model": "minirocket", "description": "MiniRocket", "score_name": "test accuracy", "score_mean": 0.863, "higher_is_better": True, "train_seconds": 0.1}
    ensembles = {"cnn": {"score_name": "test accuracy", "score": 0.874, "seeds": 3, "train_seconds": 60.0}, "gru": {"score_name": "test accuracy", "score": 0.75, "seeds": 3, "train_seconds": 90.0}}
    said = verdict("a set", rows, "cnn", None, {}, {}, reference=reference, ensembles=ensembles)
    assert "CNN's 3 seeds predicting together (the mean of their class probabilities) score 87.4%, above the reference's 86.3% at 3× one run's training." in said
    ensembles["gru"]["score"] = 0.9
    said = verdict("a set", rows, "cnn", None, {}, {}, reference=reference, ensembles=ensembles)
    assert "score 87.4%; the best seeds together are GRU's, 90.0%, above the reference's 86.3%" in said
    ensembles["gru"]["score"], ensembles["cnn"]["score"] = 0.5, 0.863
    assert "level with the reference's 86.3%" in verdict("a set", rows, "cnn", None, {}, {}, reference=reference, ensembles=ensembles)
    assert "together" not in verdict("a set", rows, "cnn", None, {}, {}, reference=reference)
    # with the test set's size: 1.1 points of 1000 examples is 11 of them; of 90 examples, one
    ensembles["cnn"]["score"] = 0.874
    assert "at 3× one run's training." in verdict("a set", rows, "cnn", None, {}, {}, reference={**reference, "test_examples": 1000}, ensembles=ensembles)
    small = verdict("a set", rows, "cnn", None, {}, {}, reference={**reference, "test_examples": 90}, ensembles=ensembles)
    assert "above the reference's 86.3% at 3× one run's training (0.99 of 90 test examples: too few to tell apart at 95%)." in small

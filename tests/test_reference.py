"""The non-neural reference row: fitted on the same data, scored on the same test split, shown beside the
networks (table, summary.json, report), never ranked among them, and chosen by the data's kind alone."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

import nncompare
from nncompare.data import load_dataset
from nncompare.reference import fit_reference, reference_line, reference_name
from nncompare.train import TrainConfig

ONE_EPOCH = TrainConfig(max_epochs=1)


def test_series_reference_is_minirocket_scored_on_the_test_split():
    from aeon.classification.convolution_based import MiniRocketClassifier

    ds = load_dataset("ucr:ItalyPowerDemand")
    ref = fit_reference(ds)
    assert ref["model"] == "minirocket" and ref["family"] == "non-neural" and ref["score_name"] == "test accuracy"
    # the same fit by hand: train + validation in aeon's (N, channels, length) layout, scored on test
    layout = lambda split: split.x.numpy().transpose(0, 2, 1)  # (N, L, C) -> (N, C, L)
    clf = MiniRocketClassifier(random_state=0, n_jobs=1).fit(np.concatenate([layout(ds.train), layout(ds.val)]), np.concatenate([ds.train.y.numpy(), ds.val.y.numpy()]))
    assert ref["score_mean"] == float(np.mean(clf.predict(layout(ds.test)) == ds.test.y.numpy()))
    assert ref["score_mean"] > 0.9  # MiniRocket on ItalyPowerDemand: about 95%
    assert ref["fitted_on"] == f"train + validation ({len(ds.train) + len(ds.val)} examples)"


def test_the_reference_repeats_for_a_seed():
    ds = load_dataset("ucr:ItalyPowerDemand")
    assert fit_reference(ds)["score_mean"] == fit_reference(ds)["score_mean"]


def test_images_get_logistic_regression_and_text_its_trivial_predictor():
    digits = load_dataset("digits")
    ref = fit_reference(digits)
    assert ref["model"] == "logistic" and 0.85 < ref["score_mean"] <= 1.0
    text = load_dataset("text")
    trivial = fit_reference(text)
    assert trivial["model"] == "trivial" and trivial["score_name"] == "test bits/char" and not trivial["higher_is_better"]
    assert trivial["score_mean"] == text.meta.baseline["expected"]
    assert reference_name(load_dataset("adding:20").meta) == "trivial"  # a synthetic task: its own trivial predictor
    assert fit_reference(load_dataset("adding:20"))["score_mean"] == load_dataset("adding:20").meta.baseline["measured"]


def test_compare_shows_the_reference_beside_the_networks_and_no_reference_leaves_it_out(tmp_path):
    result = nncompare.compare("ucr:ItalyPowerDemand", models=["mlp"], seeds=1, config=ONE_EPOCH, workers=1, store=tmp_path)
    ref = result.reference
    assert ref["model"] == "minirocket" and [r["model"] for r in result.rows] == ["mlp"]  # not a ranked row
    assert ref["score_mean"] == fit_reference(load_dataset("ucr:ItalyPowerDemand"))["score_mean"]
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["reference"]["score_mean"] == ref["score_mean"] and summary["best"] == "mlp"
    text = result.table()
    assert "minirocket" in text and "(non-neural reference)" in text and "non-neural reference, MiniRocket" in text
    without = nncompare.compare("ucr:ItalyPowerDemand", models=["mlp"], seeds=1, config=ONE_EPOCH, workers=1, store=tmp_path, reference=False)
    assert without.reference is None
    assert json.loads((without.folder / "summary.json").read_text())["reference"] is None


def test_the_reference_line_says_who_wins_by_how_much_and_at_what_cost():
    ref = {"model": "minirocket", "description": "MiniRocket", "score_name": "test accuracy", "score_mean": 0.95, "higher_is_better": True, "train_seconds": 1.0}
    behind = {"model": "cnn", "score_mean": 0.90, "n_done": 3, "train_seconds": 40.0}
    assert reference_line(ref, behind).endswith("it beats the best network, CNN, by 5.0 points; CNN trains 40× as long per run")
    ahead = {**behind, "score_mean": 0.97, "train_seconds": 2.0}
    assert reference_line(ref, ahead).endswith("the best network, CNN, beats it by 2.0 points; CNN trains 2× as long per run")
    quick = {**ahead, "train_seconds": 0.25}
    assert reference_line(ref, quick).endswith("beats it by 2.0 points; the reference takes 4× as long to fit as one CNN run")
    mse = {**ref, "score_name": "test MSE", "score_mean": 0.5, "higher_is_better": False}
    assert "beats it by 0.1" in reference_line(mse, {**behind, "score_mean": 0.4})


def test_the_reference_line_says_when_the_gap_is_too_few_test_examples():
    # 22 test examples: a gap of one is 4.5 points and no test tells it apart; 100: ten examples do
    ref = {"model": "minirocket", "description": "MiniRocket", "score_name": "test accuracy", "score_mean": 20 / 22, "higher_is_better": True, "train_seconds": 1.0, "test_examples": 22}
    best = {"model": "rnn", "score_mean": 21 / 22, "n_done": 3, "train_seconds": 2.0}
    assert "beats it by 4.5 points (1 of 22 test examples: too few to tell the two apart at 95%); RNN trains" in reference_line(ref, best)
    behind = {**best, "score_mean": 15 / 22}  # five behind: still too few (McNemar's best p is 0.0625)
    assert "it beats the best network, RNN, by 22.7 points (5 of 22 test examples: too few" in reference_line(ref, behind)
    assert "too few" not in reference_line(ref, {**best, "score_mean": 14 / 22})  # six: 0.031
    assert "too few" not in reference_line({**ref, "score_mean": 0.80, "test_examples": 100}, {**best, "score_mean": 0.90})
    assert "too few" not in reference_line({**ref, "score_mean": best["score_mean"]}, best)  # a tie says so itself


def test_a_classification_reference_records_its_test_size():
    ds = load_dataset("ucr:ItalyPowerDemand")
    assert fit_reference(ds)["test_examples"] == len(ds.test)


def test_no_code_path_looks_at_a_data_set_name():
    """Models, training, runs and the reference are chosen by the data's kind, task and shape: no string
    in their code is the name of a data set nncompare ships (the loaders, which define them, aside)."""
    from nncompare.data import list_sources
    from nncompare.data.ucr import bundled_ucr_names

    kinds = {"text", "image", "series"}  # "text" is a data set and a kind of data; a kind may be compared with
    names = ({s.name.lower() for s in list_sources()} | {n.lower() for n in bundled_ucr_names()}) - kinds
    package = Path(nncompare.__file__).parent
    checked = [p for p in package.rglob("*.py") if p.relative_to(package).parts[0] not in ("data", "cli")]
    assert len(checked) > 30
    for path in checked:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):  # `x == "gunpoint"`, `name in ("mnist1d", ...)`
                for c in ast.walk(node):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        assert c.value.lower() not in names, f"{path}: compares with the data set name {c.value!r}"

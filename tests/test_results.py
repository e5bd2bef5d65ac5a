"""Aggregated results as the table, summary.json and the report show them: one seed, ties, file modes."""

from __future__ import annotations

import os
import stat

from nncompare.report.overview import verdict
from nncompare.results import best_models, format_score, seeds_text, underfit, underfit_line
from nncompare.utils import atomic_write_text


def row(model, mean, std=0.0, n=3, name="test accuracy"):
    return {"model": model, "score_mean": mean, "score_std": std, "n_runs": n, "n_done": n, "n_diverged": 0, "score_name": name, "higher_is_better": name == "test accuracy", "train_seconds": 1.0, "params": 10, "family": "convolutional"}


def test_one_seed_prints_no_spread():
    assert format_score(row("cnn", 0.85, n=1)) == "85.0"
    assert format_score(row("cnn", 0.85, 0.012, n=3)) == "85.0 ± 1.2"
    assert format_score(row("cnn", 0.00123, n=1, name="test MSE")) == "0.00123"
    assert seeds_text(1) == "one seed" and seeds_text(3) == "mean of 3 seeds"


def test_ties_at_the_shown_precision_are_ties_and_the_exact_best_comes_first():
    rows = [row("mlp", 0.9), row("cnn", 0.99996), row("gru", 1.0), row("lstm", 0.998)]
    assert best_models(rows) == ["gru", "cnn"]  # 100.0 and 100.0 as shown; 99.8 is not a tie
    assert best_models([row("mlp", 0.9), row("cnn", 0.95)]) == ["cnn"]
    losses = [row("mlp", 0.5, name="test MSE"), row("cnn", 0.2, name="test MSE"), row("gru", 0.20001, name="test MSE")]
    assert best_models(losses) == ["cnn", "gru"]  # lower is better; 0.2 and 0.2 to 4 digits
    assert best_models([{**row("cnn", 0.9), "n_done": 0}]) == []


def test_the_verdict_calls_a_tie_a_tie_and_counts_one_seed_in_words():
    rows = [row("cnn", 1.0, n=1), row("gru", 1.0, n=1), row("mlp", 0.8, n=1)]
    text = verdict("gunpoint", rows, "cnn", None, {}, {}, tied=["cnn", "gru"])
    assert text.startswith("CNN and GRU tie for best on gunpoint (100.0% test accuracy, one seed each).")
    alone = verdict("gunpoint", rows[:1] + rows[2:], "cnn", None, {}, {}, tied=["cnn"])
    assert alone.startswith("CNN fits gunpoint best (100.0% test accuracy, one seed).") and "1 seeds" not in alone


def test_the_verdict_says_when_the_runner_up_is_too_few_test_examples_behind():
    from nncompare.results import aggregate, separation

    runs = [{"model": m, "seed": k, "status": "done", "score": v, "score_name": "test accuracy", "higher_is_better": True, "params": 1, "train_seconds": 1.0, "epochs": 1, "inference_per_second": 1.0} for m, v in (("rnn", 21 / 22), ("mlp", 20 / 22)) for k in range(3)]
    rows = aggregate(runs, ["rnn", "mlp"], {"rnn": 0.003, "mlp": 0.003})
    text = verdict("unittest", rows, "rnn", separation(rows, test_examples=22), {}, {}, tied=["rnn"])
    assert "MLP (90.9%) is not distinguishable from it at 95%: the gap is 1 of 22 test examples, and a gap of fewer than 6 test examples cannot be told apart" in text
    assert "behind at the 95% level" not in text and "more seeds would tell" not in text
    assert "The MLP, which ties no weights across positions, is 4.5 points behind, 1 of 22 test examples: too few to say whether sharing weights" in text
    wide = verdict("unittest", rows, "rnn", separation(rows, test_examples=220), {}, {}, tied=["rnn"])  # ten examples: the seeds decide
    assert "The runner-up, MLP (90.9%), is behind at the 95% level (Welch p = 0)." in wide
    assert "is 4.5 points behind: sharing weights across positions pays on this data." in wide


def test_models_that_fit_their_training_data_far_less_than_the_best_fitting_one_are_named():
    fit = {"cnn": 1.0, "gru": 0.95, "lstm": 0.857, "rnn": 0.90}
    rows = [{**row(m, 0.8), "train_acc_mean": a} for m, a in fit.items()]
    top, low = underfit(rows)
    assert top["model"] == "cnn" and [r["model"] for r in low] == ["lstm", "rnn"]  # 10 points or more below; gru is 5 below
    line = underfit_line(rows)
    assert line.startswith("lstm, rnn fit the training data far less than cnn (training accuracy 85.7%, 90.0% at the kept epochs, against 100.0%)")
    text = verdict("coffee", rows, "cnn", None, {}, {}, tied=["cnn"])
    assert "LSTM and RNN fit their own training data far less than CNN (training accuracy 85.7% and 90.0%" in text
    one = verdict("coffee", rows[:2] + [{**row("lstm", 0.8), "train_acc_mean": 0.5}], "cnn", None, {}, {}, tied=["cnn"])
    assert "LSTM fits its own training data far less than CNN (training accuracy 50.0% at the kept epochs, against 100.0%): its test score is" in one
    # nothing to say: every model fits, regression has no training accuracy, runs stored before it was recorded
    assert underfit_line([{**row(m, 0.8), "train_acc_mean": 0.99} for m in ("cnn", "gru")]) == ""
    assert underfit_line([{**row(m, 0.1, name="test MSE"), "train_acc_mean": float("nan")} for m in ("cnn", "gru")]) == ""
    assert underfit_line([row("cnn", 0.9), row("gru", 0.5)]) == "" and "training data" not in verdict("x", [row("cnn", 0.9), row("gru", 0.5)], "cnn", None, {}, {})


def test_files_are_written_as_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "shared.json", "{}")
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["private.json", "shared.json"]  # no temporary left

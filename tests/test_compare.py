"""The comparison grid: aggregation over seeds, parallel = sequential, crash isolation, overrides."""

import json
import math
import sqlite3

import pytest

import importlib

import nncompare
from nncompare.results import aggregate, format_ci, format_score, separation, separation_line
from nncompare.runs.workers import plan_workers

# the worker pool (runs/workers.py): where runs are scheduled and executed
workers_module = importlib.import_module("nncompare.runs.workers")
from nncompare.train import TrainConfig

TINY = TrainConfig(max_epochs=2)


def test_aggregate_mean_and_sample_std_over_finished_seeds():
    runs = [
        {"model": "cnn", "seed": 1, "status": "done", "score": 0.94, "score_name": "test accuracy", "higher_is_better": True, "params": 10, "train_seconds": 3.0, "epochs": 5, "inference_per_second": 300.0},
        {"model": "cnn", "seed": 0, "status": "done", "score": 0.90, "score_name": "test accuracy", "higher_is_better": True, "params": 10, "train_seconds": 1.0, "epochs": 3, "inference_per_second": 100.0},
        {"model": "cnn", "seed": 2, "status": "failed", "error": "boom"},
        {"model": "gru", "seed": 0, "status": "failed", "error": "boom"},
    ]
    cnn, gru = aggregate(runs, ["cnn", "gru"], {"cnn": 0.01, "gru": 0.01})
    assert cnn["n_runs"] == 3 and cnn["n_done"] == 2
    assert cnn["scores"] == [0.90, 0.94]  # seed order, not the order the runs finished in
    assert cnn["score_mean"] == pytest.approx(0.92)
    assert cnn["score_std"] == pytest.approx(math.sqrt(((0.02**2) * 2) / 1))  # sample std, ddof=1
    assert cnn["train_seconds"] == pytest.approx(2.0) and cnn["inference_per_second"] == pytest.approx(200.0)
    assert gru["n_done"] == 0 and math.isnan(gru["score_mean"])
    assert format_score(cnn) == "92.0 ± 2.8 (1 failed)"
    assert format_score(gru) == "failed"
    mse = {**cnn, "score_name": "test MSE", "score_mean": 0.001234, "score_std": 0.00031}
    assert format_score(mse) == "0.001234 ± 0.00031 (1 failed)"
    # 95% CI of a mean of 2 seeds: t(0.975, df=1) = 12.706 times std / sqrt(2)
    assert cnn["score_ci95"] == pytest.approx(12.7062 * cnn["score_std"] / math.sqrt(2), rel=1e-4)
    assert format_ci(cnn) == f"[{100 * (0.92 - cnn['score_ci95']):.1f}, {min(100 * (0.92 + cnn['score_ci95']), 100):.1f}]"
    assert math.isnan(gru["score_ci95"]) and format_ci(gru) == "-"
    near_top = {**cnn, "score_mean": 0.99, "score_ci95": 0.05}
    assert format_ci(near_top) == "[94.0, 100.0]"  # an accuracy interval stops at 100%
    wide_mse = {**mse, "score_mean": 0.002, "score_ci95": 0.005}
    assert format_ci(wide_mse) == "[0, 0.007]"  # an error is never below 0, whatever the t-interval says


def _runs(model, scores, name="test accuracy", higher=True):
    return [
        {"model": model, "seed": i, "status": "done", "score": v, "score_name": name, "higher_is_better": higher, "params": 1, "train_seconds": 1.0, "epochs": 1, "inference_per_second": 1.0}
        for i, v in enumerate(scores)
    ]


def test_the_best_two_are_compared_at_the_95_percent_level():
    rows = aggregate(_runs("mlp", [0.60, 0.62, 0.61]) + _runs("cnn", [0.90, 0.92, 0.91]) + _runs("gru", [0.88, 0.93, 0.89]), ["mlp", "cnn", "gru"], {m: 0.01 for m in ("mlp", "cnn", "gru")})
    sep = separation(rows)
    assert (sep["first"], sep["second"]) == ("cnn", "gru")  # the best two, mlp left out
    assert sep["difference"] == pytest.approx(0.91 - 0.90)
    assert sep["p_value"] > 0.5 and not sep["distinguishable"]
    assert "not distinguishable at 95%; more seeds" in separation_line(sep, "test accuracy") and "1.0 points apart" in separation_line(sep, "test accuracy")

    rows = aggregate(_runs("mlp", [0.60, 0.62, 0.61]) + _runs("cnn", [0.90, 0.92, 0.91]), ["mlp", "cnn"], {"mlp": 0.01, "cnn": 0.01})
    sep = separation(rows)
    assert sep["first"] == "cnn" and sep["p_value"] < 0.001 and sep["distinguishable"]
    assert separation_line(sep, "test accuracy").endswith("distinguishable at 95%")

    # a loss ranks the lowest first
    rows = aggregate(_runs("tcn", [0.10, 0.11], "test MSE", False) + _runs("gru", [0.50, 0.52], "test MSE", False), ["tcn", "gru"], {"tcn": 0.01, "gru": 0.01})
    assert separation(rows)["first"] == "tcn" and separation(rows)["difference"] == pytest.approx(-0.405)
    # one seed each: nothing to test
    assert separation(aggregate(_runs("cnn", [0.9]) + _runs("gru", [0.8]), ["cnn", "gru"], {"cnn": 0.01, "gru": 0.01})) is None


def test_threads_per_run_do_not_depend_on_the_worker_count(monkeypatch):
    monkeypatch.setattr(workers_module, "available_cores", lambda: 4)
    assert plan_workers(12, None) == (4, 1)
    assert plan_workers(12, 1) == (1, 1)
    assert plan_workers(2, None) == (2, 2)
    assert plan_workers(2, 1) == (1, 2)
    assert plan_workers(1, None) == (1, 4)
    with pytest.raises(nncompare.UserError, match="workers must be a positive whole number"):
        plan_workers(3, 0)


@pytest.mark.slow
def test_parallel_workers_give_the_same_numbers_as_one_after_another(tmp_path):
    kw = dict(models=["mlp", "gru"], seeds=2, config=TINY, store=tmp_path)
    parallel = nncompare.compare("digits", workers=2, **kw)
    sequential = nncompare.compare("digits", workers=1, **kw)
    key = lambda c: {(r["model"], r["seed"]): (r["test_acc"], r["test_loss"], r["val_loss"]) for r in c.runs}
    assert key(parallel) == key(sequential)
    assert len(key(parallel)) == 4
    assert parallel.config["workers"] == 2 and sequential.config["workers"] == 1
    # both comparisons are in the index
    con = sqlite3.connect(tmp_path / "index.sqlite")
    assert con.execute("SELECT COUNT(*) FROM comparisons").fetchone() == (2,)
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone() == (8,)


@pytest.mark.slow
def test_a_pool_starts_the_longest_runs_first_and_the_numbers_do_not_change(tmp_path, monkeypatch):
    """Workers take recurrent runs first, then convolutional, then feed-forward (larger models first
    within a family, seeds in order); the order of the models given and the stored results are kept."""
    real_round, handed = workers_module._pool_round, []

    def spy(specs, *args):
        handed.extend((sp.model, sp.seed) for sp in specs)
        return real_round(specs, *args)

    monkeypatch.setattr(workers_module, "_pool_round", spy)
    kw = dict(models=["mlp", "cnn", "rnn", "gru"], seeds=2, config=TrainConfig(max_epochs=1), store=tmp_path, model_args={"rnn": {"hidden_size": 4}})
    pool = nncompare.compare("digits", workers=2, **kw)
    assert handed == [("gru", 0), ("gru", 1), ("rnn", 0), ("rnn", 1), ("cnn", 0), ("cnn", 1), ("mlp", 0), ("mlp", 1)]
    assert [r["model"] for r in pool.rows] == ["mlp", "cnn", "rnn", "gru"]
    one = nncompare.compare("digits", workers=1, **kw)
    key = lambda c: {(r["model"], r["seed"]): (r["test_acc"], r["test_loss"]) for r in c.runs}
    assert key(pool) == key(one) and len(key(one)) == 8


def test_a_crashing_run_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    real_execute = workers_module.execute

    def flaky(spec, on_epoch=None):
        if spec.model == "gru" and spec.seed == 1:
            raise RuntimeError("simulated crash")
        return real_execute(spec, on_epoch=on_epoch)

    monkeypatch.setattr(workers_module, "execute", flaky)
    result = nncompare.compare("digits", models=["mlp", "gru"], seeds=2, config=TINY, store=tmp_path, workers=1)
    statuses = {(r["model"], r["seed"]): r["status"] for r in result.runs}
    assert statuses == {("mlp", 0): "done", ("mlp", 1): "done", ("gru", 0): "done", ("gru", 1): "failed"}
    gru = next(r for r in result.rows if r["model"] == "gru")
    assert gru["n_done"] == 1 and gru["n_runs"] == 2
    con = sqlite3.connect(tmp_path / "index.sqlite")
    assert con.execute("SELECT status FROM runs WHERE model='gru' AND seed=1").fetchone() == ("failed",)
    assert "simulated crash" in next(r["error"] for r in result.runs if r["status"] == "failed")


@pytest.mark.slow
def test_a_script_without_the_main_guard_is_told_the_fix_in_one_line(tmp_path):
    """Worker processes import the main script again; a top-level compare() call there must not start
    comparisons inside the workers, nor leave the user with multiprocessing's tracebacks."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(f"import nncompare\nfrom nncompare.train import TrainConfig\nnncompare.compare('digits', models=['mlp'], seeds=2, workers=2, config=TrainConfig(max_epochs=1), store={str(tmp_path / 'store')!r})\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all('under `if __name__ == "__main__":`' in line for line in lines), done.stderr[-2000:]
    (failure,) = {json.loads(p.read_text())["error"] for p in (tmp_path / "store").glob("*/mlp-seed*/failure.json")}
    assert "worker processes die before they start a run" in failure and "__main__" in failure


def test_model_overrides_are_used_and_recorded(tmp_path):
    result = nncompare.compare(
        "digits", models=["gru"], seeds=1, config=TINY, store=tmp_path, model_args={"gru": {"hidden_size": 5}}, workers=1
    )
    (row,) = result.rows
    # GRU with 5 units on 8 features per row: 3 * (5*8 + 5*5 + 2*5) + (5*10 + 10)
    assert row["params"] == 3 * (5 * 8 + 5 * 5 + 2 * 5) + 5 * 10 + 10
    config = json.loads((result.folder / "gru-seed0" / "config.json").read_text())
    assert config["model_args"] == {"hidden_size": 5, "num_layers": 1, "impl": "auto", "dropout": 0.0, "norm": "none", "recurrent_dropout": 0.0, "readout": "last", "segment": 1}
    assert config["train"]["lr"] == 1e-2 and config["train"]["seed"] == 0 and config["threads"] >= 1


def test_a_parameter_budget_sizes_every_model_within_five_percent(tmp_path):
    result = nncompare.compare("digits", models=["mlp", "cnn", "gru"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, params=5000, workers=1)
    for row in result.rows:
        assert abs(row["params"] - 5000) <= 250, row
    assert result.config["params_target"] == 5000
    config = json.loads((result.folder / "cnn-seed0" / "config.json").read_text())
    metrics = json.loads((result.folder / "cnn-seed0" / "metrics.json").read_text())
    assert abs(metrics["params"] - 5000) <= 250 and config["model_args"]["channels"] < 32  # narrower than the default
    # the other hyperparameters the user gave are kept while the width is solved for
    kept = nncompare.compare("digits", models=["mlp"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, params=5000, model_args={"mlp": {"depth": 1}}, workers=1)
    stored = json.loads((kept.folder / "mlp-seed0" / "config.json").read_text())["model_args"]
    assert stored["depth"] == 1 and abs(kept.rows[0]["params"] - 5000) <= 250


def test_bad_grid_arguments_are_refused_before_anything_is_stored(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(nncompare.UserError, match="seeds must be a positive whole number"):
        nncompare.compare("digits", seeds=0, store=store)
    with pytest.raises(nncompare.UserError, match="not among the models compared"):
        nncompare.compare("digits", models=["mlp"], model_args={"gru": {}}, store=store)
    with pytest.raises(nncompare.UserError, match="no hyperparameter"):
        nncompare.compare("digits", models=["mlp"], model_args={"mlp": {"units": 3}}, store=store)
    with pytest.raises(nncompare.UserError, match="given both a parameter budget and its width"):
        nncompare.compare("digits", models=["mlp"], model_args={"mlp": {"width": 3}}, params=5000, store=store)
    with pytest.raises(nncompare.UserError, match="cannot be sized to 10 parameters"):
        nncompare.compare("digits", models=["mlp"], params=10, store=store)
    assert not store.exists()


def test_tune_gives_every_model_the_same_trials_and_uses_what_it_chose(tmp_path):
    from nncompare.runs.tune import LR_RANGE

    result = nncompare.compare("digits", models=["mlp", "gru"], seeds=1, config=TrainConfig(max_epochs=1), tune=3, workers=1, store=tmp_path)
    tuning = result.config["tuning"]
    assert set(tuning) == {"mlp", "gru"} and all(t["trials"] == 3 for t in tuning.values())
    assert 512 // 4 <= tuning["mlp"]["width"] <= 512 * 4 and 64 // 4 <= tuning["gru"]["hidden_size"] <= 64 * 4
    for row in result.rows:
        chosen = tuning[row["model"]]
        assert LR_RANGE[0] <= chosen["lr"] <= LR_RANGE[1] and row["lr"] == chosen["lr"]
        config = json.loads(next(tmp_path.glob(f"*/{row['model']}-seed0/config.json")).read_text())
        assert config["train"]["lr"] == chosen["lr"]
        width = "width" if row["model"] == "mlp" else "hidden_size"
        assert config["model_args"][width] == chosen[width]
    again = nncompare.compare("digits", models=["mlp", "gru"], seeds=1, config=TrainConfig(max_epochs=1), tune=3, workers=1, store=tmp_path)
    assert again.config["tuning"] == tuning  # seeded sampler, seeded trials: the same choices


def test_tune_with_a_parameter_budget_tunes_only_the_learning_rate(tmp_path):
    result = nncompare.compare("digits", models=["cnn"], seeds=1, config=TrainConfig(max_epochs=1), tune=2, params=5000, workers=1, store=tmp_path)
    assert set(result.config["tuning"]["cnn"]) == {"lr", "val_loss", "trials", "pruned"}
    assert abs(result.rows[0]["params"] - 5000) <= 250
    with pytest.raises(nncompare.UserError, match="tuning chooses each model's learning rate"):
        nncompare.compare("digits", models=["cnn"], config=TrainConfig(lr=0.01), tune=2, store=tmp_path)
    with pytest.raises(nncompare.UserError, match="tune must be a positive whole number"):
        nncompare.compare("digits", models=["cnn"], tune=0, store=tmp_path)


@pytest.mark.slow
def test_tuning_in_worker_processes_chooses_what_tuning_here_chooses(tmp_path):
    here = nncompare.compare("digits", models=["mlp", "cnn"], seeds=1, config=TrainConfig(max_epochs=1), tune=2, workers=1, store=tmp_path)
    pool = nncompare.compare("digits", models=["mlp", "cnn"], seeds=1, config=TrainConfig(max_epochs=1), tune=2, workers=2, store=tmp_path)
    assert pool.config["tuning"] == here.config["tuning"]
    assert [r["score_mean"] for r in pool.rows] == [r["score_mean"] for r in here.rows]


def test_a_gap_of_few_test_examples_is_not_distinguishable_however_the_seeds_agree():
    # 22 test examples, three seeds each that agree exactly: Welch's p is 0, but one example apart
    # is no evidence about the two models, and no pairing of their predictions could make it so
    rows = aggregate(_runs("rnn", [21 / 22] * 3) + _runs("mlp", [20 / 22] * 3), ["rnn", "mlp"], {"rnn": 0.003, "mlp": 0.003})
    sep = separation(rows, test_examples=22)
    assert sep["p_value"] == 0.0 and sep["test_set_too_small"] and not sep["distinguishable"]
    assert sep["gap_examples"] == pytest.approx(1.0)
    line = separation_line(sep, "test accuracy")
    assert line.startswith("rnn vs mlp: 4.5 points apart (1 of 22 test examples), Welch t-test p = 0 over seeds, but not distinguishable at 95%")
    assert "fewer than 6 test examples" in line and "more seeds could not" in line
    # six examples apart can be told apart (McNemar's exact p at best 0.031), five cannot (0.0625)
    assert separation(aggregate(_runs("rnn", [0.96, 0.96, 0.97]) + _runs("mlp", [0.90, 0.91, 0.90]), ["rnn", "mlp"], {"rnn": 0.01, "mlp": 0.01}), test_examples=100)["distinguishable"]
    assert not separation(aggregate(_runs("rnn", [0.96, 0.96, 0.96]) + _runs("mlp", [0.91, 0.91, 0.91]), ["rnn", "mlp"], {"rnn": 0.01, "mlp": 0.01}), test_examples=100)["distinguishable"]
    # without a test size (a regression, a label per position) the seeds decide alone, as before
    assert separation(rows)["distinguishable"] and "test_set_too_small" not in separation(rows)


def test_identical_scores_in_one_group_give_no_warning():
    import warnings

    rows = aggregate(_runs("gru", [0.966, 0.966, 0.966]) + _runs("cnn", [0.95, 0.96, 0.955]), ["gru", "cnn"], {"gru": 0.01, "cnn": 0.01})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sep = separation(rows)
    assert sep["first"] == "gru" and 0 <= sep["p_value"] <= 1

"""The command line, end to end: a tiny comparison in worker processes, the files and index it writes,
the listings, and one-line errors with exit code 2."""

import csv
import json
import os
import sqlite3
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from nncompare.cli.main import main
from nncompare.data import load_dataset
from nncompare.models import create_model


def nncompare_cli(*args, cwd=None):
    """Run the installed console script in a fresh process."""
    return subprocess.run(["nncompare", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    proc = nncompare_cli("compare", "digits", "--models", "mlp,gru", "--seeds", "2", "--epochs", "2", "--store", str(store), "--workers", "2", "--no-report")
    return store, proc


def test_compare_writes_runs_and_index(tiny_comparison):
    store, proc = tiny_comparison
    assert proc.returncode == 0, proc.stderr
    assert ("mlp ★" in proc.stdout) != ("gru ★" in proc.stdout)  # one best, marked
    assert "95% CI" in proc.stdout and "Welch t-test" in proc.stdout
    (folder,) = [p for p in store.iterdir() if p.is_dir()]
    spec = json.loads((folder / "comparison.json").read_text())
    assert spec["models"] == ["mlp", "gru"] and spec["seeds"] == [0, 1] and spec["workers"] == 2
    digits = load_dataset("digits")
    for model in ("mlp", "gru"):
        for seed in (0, 1):
            run = folder / f"{model}-seed{seed}"
            assert sorted(os.listdir(run)) == ["config.json", "history.csv", "metrics.json", "model.safetensors", "timing.json"]
            config = json.loads((run / "config.json").read_text())
            assert config["model"] == model and config["seed"] == seed and config["train"]["max_epochs"] == 2
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["status"] == "done" and 0 <= metrics["test_acc"] <= 1 and metrics["epochs"] == 2
            with open(run / "history.csv") as f:
                rows = list(csv.DictReader(f))
            assert [int(r["epoch"]) for r in rows] == [1, 2]
            assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}  # seconds: timing.json
            timing = json.loads((run / "timing.json").read_text())
            assert len(timing["epoch_seconds"]) == 2 and timing["train_seconds"] > 0 and "train_seconds" not in metrics
            # the weights load back into a fresh model and reproduce the stored test accuracy
            net = create_model(model, digits.meta, **{k: v for k, v in config["model_args"].items()})
            net.load_state_dict(load_file(run / "model.safetensors"))
            net.eval()
            with torch.no_grad():
                acc = (net(digits.test.x).argmax(1) == digits.test.y).float().mean().item()
            assert acc == pytest.approx(metrics["test_acc"], abs=1e-6)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "done" and summary["best"] in ("mlp", "gru")

    con = sqlite3.connect(store / "index.sqlite")
    comps = con.execute("SELECT id, dataset, models, seeds, status FROM comparisons").fetchall()
    assert comps == [(folder.name, "digits", "mlp,gru", 2, "done")]
    runs = con.execute("SELECT model, seed, status FROM runs ORDER BY model, seed").fetchall()
    assert runs == [("gru", 0, "done"), ("gru", 1, "done"), ("mlp", 0, "done"), ("mlp", 1, "done")]


def test_runs_lists_comparisons_and_their_runs(tiny_comparison, capsys):
    store, _ = tiny_comparison
    (folder,) = [p for p in store.iterdir() if p.is_dir()]
    assert main(["runs", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "mlp,gru" in out
    assert main(["runs", folder.name, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.count("done") == 4


def test_models_and_datasets_listings(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn", "tcn", "rnn", "lstm", "gru"):
        assert f"│ {name} " in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "mnist1d" in out and "40 x 1" in out and "3600 / 400 / 1000" in out
    assert "digits" in out and "1 x 8 x 8" in out
    assert "seqdigits" in out and "64 x 1" in out and "mnist:DIR" in out and "pmnist:DIR" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "mnist2d"], "unknown data set 'mnist2d'; did you mean 'mnist1d'? valid choices: digits, mnist1d"),
        (["compare", "digits", "--models", "cnn,lstn"], "unknown model 'lstn'; did you mean 'lstm'? valid choices: mlp, cnn, tcn, rnn, lstm, gru"),
        (["compare", "digits", "--seeds", "0"], "argument --seeds: '0' must be at least 1"),
        (["compare", "digits", "--lr", "-1"], "argument --lr: '-1' must be a positive number"),
        (["compare", "digits", "--epochs", "many"], "argument --epochs: 'many' is not a whole number"),
        (["compare", "digits", "--device", "tpu"], "unknown device 'tpu'"),
        (["compare", "digits", "--models", "cnn,cnn"], "listed twice"),
        (["compare", "digits", "--params", "lots"], "argument --params: 'lots' is not a parameter count; write it as 5000, 5k or 1.5M"),
        (["compare", "digits", "--params", "0.5"], "must be a positive whole number of parameters"),
        (["compare", "digits", "--models", "mlp", "--params", "100"], "model 'mlp' cannot be sized to 100 parameters"),
        (["compare", "digits", "--no-validation", "--refit"], "validation='none' and refit=True cannot be combined"),
        (["compare", "digits", "--budget", "soon"], "'soon' is not a duration; write it as 600, 90s, 10m or 1.5h"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["runs", "no-such-comparison"], "no comparison 'no-such-comparison'"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args, message, tmp_path, capsys):
    if args[0] == "runs":
        args = args + ["--store", str(tmp_path)]
    else:
        args = args + ["--store", str(tmp_path / "store")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("nncompare: error: ")
    assert message in err
    assert err.count("\n") == 1, err


def test_error_from_the_console_script_has_no_traceback(tmp_path):
    proc = nncompare_cli("compare", "nope", "--store", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("nncompare: error: unknown data set 'nope'")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "index.sqlite").exists()  # nothing half-written for a refused command


@pytest.mark.slow
def test_ctrl_c_stops_the_grid_after_a_step_and_says_how_to_resume(tmp_path):
    import signal
    import time

    proc = subprocess.Popen(
        ["nncompare", "compare", "mnist1d", "--models", "gru,lstm", "--store", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.time() + 60
    while not list(tmp_path.glob("*/comparison.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the workers are training now
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    *_, said, how = err.strip().splitlines()
    assert said.startswith("nncompare: interrupted after 0 of 6 runs"), err
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert how == f"resume with: nncompare compare mnist1d --models gru,lstm --store {tmp_path} --resume {folder}", err
    assert "Traceback" not in err, err
    con = sqlite3.connect(tmp_path / "index.sqlite")
    assert con.execute("SELECT status FROM comparisons").fetchall() == [("interrupted",)]
    # no run that was cut short looks finished
    for run in tmp_path.glob("*/*-seed*"):
        assert not (run / "metrics.json").exists() or json.loads((run / "metrics.json").read_text())["status"] == "done"


def test_a_benchmark_script_reports_a_user_error_on_one_line(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "longmemory.py")
    proc = subprocess.run(
        [sys.executable, script, "--params", "100", "--adding", "20", "--copy", "5", "--store", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("longmemory.py: error: model 'tcn' cannot be sized to 100 parameters")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_compare_refit_records_the_retrained_runs(tmp_path, capsys):
    code = main(["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "3", "--patience", "3", "--refit", "--workers", "1", "--store", str(tmp_path), "--quiet", "--no-report",
                 "--schedule", "cosine", "--clip", "0", "--weight-decay", "1e-4"])
    assert code == 0
    (run,) = tmp_path.glob("*/mlp-seed0")
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["train"]["refit"] is True
    assert (config["train"]["schedule"], config["train"]["clip"], config["train"]["weight_decay"]) == ("cosine", 0.0, 1e-4)
    assert 1 <= metrics["refit_epochs"] == metrics["best_epoch"] <= 3
    assert metrics["epochs"] == 3 + metrics["refit_epochs"]
    with open(run / "history.csv") as f:
        phases = [r["phase"] for r in csv.DictReader(f)]
    assert phases == [""] * 3 + ["refit"] * metrics["refit_epochs"]


def test_compare_without_validation_records_the_protocol(tmp_path, capsys):
    code = main(["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "2", "--no-validation", "--workers", "1", "--store", str(tmp_path), "--quiet", "--no-report"])
    assert code == 0
    (run,) = tmp_path.glob("*/mlp-seed0")
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["train"]["validation"] == "none" and metrics["val_loss"] is None and metrics["epochs"] == 2
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "train_acc", "lr"]  # no validation columns
    assert metrics["best_epoch"] == 1 + min(range(2), key=lambda i: float(rows[i]["train_loss"]))


def test_compare_without_validation_stops_a_fitted_run_and_says_so(tmp_path, capsys):
    # a threshold every first epoch is under: each run stops after epoch 1 of 5
    code = main(["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "5", "--no-validation", "--fitted-loss", "100", "--workers", "1", "--store", str(tmp_path), "--no-report"])
    assert code == 0
    (run,) = tmp_path.glob("*/mlp-seed0")
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["stop_reason"], metrics["epochs"], metrics["best_epoch"]) == ("fitted", 1, 1)
    assert json.loads((run / "config.json").read_text())["train"]["fitted_loss"] == 100
    out = " ".join(capsys.readouterr().out.split())  # as one line, however the console wrapped it
    assert "mlp seed 0: done" in out and "stopped after epoch 1: its training data fitted" in out


def test_compare_says_when_fitted_loss_has_no_effect(tmp_path, capsys):
    argv = ["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "1", "--workers", "1", "--store", str(tmp_path), "--no-report"]
    assert main(argv + ["--validation", "split", "--fitted-loss", "0.5"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--fitted-loss has no effect here: these runs hold a validation split out" in out
    assert main(argv + ["--no-validation", "--fitted-loss", "0.5"]) == 0  # where it applies, no such note
    assert "has no effect" not in capsys.readouterr().out


def test_shared_model_options_map_to_each_models_own_hyperparameters(tmp_path, capsys):
    from nncompare.models import shared_overrides

    assert shared_overrides("mlp", width=64, layers=3, activation="tanh", dropout=0.1, norm=None) == ({"width": 64, "depth": 3, "activation": "tanh", "dropout": 0.1}, [])
    assert shared_overrides("tcn", width=16, layers=2) == ({"num_channels": 16, "levels": 2}, [])
    overrides, notes = shared_overrides("lstm", width=20, layers=2, activation="gelu", dropout=0.2, norm="batch")
    assert overrides == {"hidden_size": 20, "num_layers": 2, "dropout": 0.2}
    assert notes == ["`activation` does not apply to lstm", "`norm='batch'` does not apply to lstm (it takes none or layer)"]
    assert shared_overrides("gru", norm="layer") == ({"norm": "layer"}, [])
    assert shared_overrides("cnn", norm="layer") == ({}, ["`norm='layer'` does not apply to cnn (it takes none or batch)"])

    code = main(["compare", "digits", "--models", "cnn,gru", "--width", "8", "--layers", "2", "--norm", "batch", "--seeds", "1", "--epochs", "1", "--workers", "1", "--store", str(tmp_path), "--quiet", "--no-report"])
    assert code == 0
    assert "note: --norm batch does not apply to gru (it takes none or layer)" in capsys.readouterr().out
    cnn = json.loads(next(tmp_path.glob("*/cnn-seed0/config.json")).read_text())["model_args"]
    gru = json.loads(next(tmp_path.glob("*/gru-seed0/config.json")).read_text())["model_args"]
    assert (cnn["channels"], cnn["depth"], cnn["norm"]) == (8, 2, "batch")
    assert (gru["hidden_size"], gru["num_layers"]) == (8, 2)

    assert main(["compare", "digits", "--recurrent-dropout"]) == 2
    assert "give --dropout P as well" in capsys.readouterr().err
    assert shared_overrides("gru", dropout=0.2, recurrent_dropout=0.2) == ({"dropout": 0.2, "recurrent_dropout": 0.2}, [])
    assert shared_overrides("mlp", recurrent_dropout=0.2) == ({}, ["`recurrent_dropout` does not apply to mlp"])
    assert main(["compare", "digits", "--dropout", "1.5"]) == 2
    assert "must be at least 0 and below 1" in capsys.readouterr().err
    assert main(["compare", "digits", "--width", "8", "--params", "5k", "--models", "cnn", "--store", str(tmp_path)]) == 2
    assert "both a parameter budget and its channels" in capsys.readouterr().err
    assert shared_overrides("tcn", readout="last") == ({"readout": "last"}, [])
    assert shared_overrides("gru", readout="mean") == ({"readout": "mean"}, [])
    assert shared_overrides("cnn", readout="last") == ({}, ["`readout` does not apply to cnn"])
    store = tmp_path / "readout"
    assert main(["compare", "digits", "--models", "tcn,mlp", "--readout", "last", "--seeds", "1", "--epochs", "1", "--workers", "1", "--store", str(store), "--no-report", "--no-reference"]) == 0
    assert "note: --readout does not apply to mlp" in capsys.readouterr().out
    assert json.loads(next(store.glob("*/tcn-seed0/config.json")).read_text())["model_args"]["readout"] == "last"
    assert main(["compare", "digits", "--readout", "first"]) == 2


def test_set_gives_one_model_one_hyperparameter_and_wins_over_the_shared_options(tmp_path, capsys):
    store = tmp_path / "set"
    args = ["compare", "digits", "--models", "cnn,gru", "--width", "8", "--seeds", "1", "--epochs", "1", "--workers", "1", "--no-report", "--no-reference"]
    assert main([*args, "--set", "cnn.kernel_size=[5,3,3]", "--set", "cnn.channels=6", "--set", "gru.readout=mean", "--set", "cnn.multiscale=false", "--store", str(store)]) == 0
    cnn = json.loads(next(store.glob("*/cnn-seed0/config.json")).read_text())["model_args"]
    gru = json.loads(next(store.glob("*/gru-seed0/config.json")).read_text())["model_args"]
    assert (cnn["kernel_size"], cnn["channels"], cnn["multiscale"]) == ([5, 3, 3], 6, False)  # JSON values; --set over --width
    assert (gru["readout"], gru["hidden_size"]) == ("mean", 8)  # text as given; --width still applies where --set is silent
    bad = {
        "cnn.downsample": "write MODEL.NAME=VALUE",
        "cnn=1": "write MODEL.NAME=VALUE",
        "cnn.colour=red": "has no hyperparameter 'colour'; valid: activation, channels",
        "lstm.segment=1": "model 'lstm' is not among the models run (cnn, gru)",
        "cnnn.depth=2": "unknown model 'cnnn'",
    }
    for item, message in bad.items():
        assert main([*args, "--set", item, "--store", str(tmp_path / "bad")]) == 2, item
        assert message in capsys.readouterr().err, item
    assert not (tmp_path / "bad").exists()  # refused before anything is stored


def test_names_with_brackets_and_colons_are_printed_as_they_are(tmp_path, capsys, monkeypatch):
    """rich would read "[raw]" as markup and ":coffee:" as an emoji code; a file's name is shown verbatim."""
    monkeypatch.chdir(tmp_path)  # a short relative name, so the table's title is not folded
    path = tmp_path / "brew:coffee:[raw].csv"
    rows = [f"{'dark' if i % 2 else 'light'}," + ",".join(str((i % 2) + 0.1 * j) for j in range(12)) for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    code = main(["compare", path.name, "--models", "mlp", "--seeds", "1", "--epochs", "1", "--workers", "1", "--store", "store", "--no-report", "--no-reference"])
    assert code == 0
    out = capsys.readouterr().out
    assert "brew:coffee:[raw].csv: test accuracy" in out
    assert "1 run on 1 worker(s)" in out and "1 run in " in out  # one run, not "1 runs"
    assert "\N{HOT BEVERAGE}" not in out


def test_the_eta_counts_a_run_in_flight_by_its_models_planned_epochs(tmp_path):
    """A UCR set trains 1000 epochs by default: a run at epoch 500 is half done, not 95% (40 epochs,
    the unscaled default, was the divisor). The plan event carries each model's budget."""
    import io

    from rich.console import Console

    import nncompare
    from nncompare.cli.compare import GridProgress
    from nncompare.train import TrainConfig

    events = []
    nncompare.compare("ucr:ItalyPowerDemand", models=["mlp", "cnn"], seeds=1, store=tmp_path, workers=1, progress=events.append, reference=False, config=TrainConfig(max_epochs=2))
    plan = next(e for e in events if e["event"] == "plan")
    assert plan["planned_epochs"] == {"mlp": 2, "cnn": 2}

    progress = GridProgress(Console(file=io.StringIO()), quiet=True)
    progress({"event": "plan", "runs": 4, "workers": 2, "threads": 1, "folder": str(tmp_path), "max_epochs": None, "planned_epochs": {"cnn": 1000, "gru": 200}})
    progress({"event": "start", "model": "cnn", "seed": 0})
    progress({"event": "epoch", "model": "cnn", "seed": 0, "epoch": 500})
    progress({"event": "start", "model": "gru", "seed": 0})
    progress({"event": "epoch", "model": "gru", "seed": 0, "epoch": 50})
    assert progress.completed() == pytest.approx(0.5 + 0.25)
    progress({"event": "done", "model": "gru", "seed": 0, "status": "done", "score_name": "test accuracy", "score": 0.9, "train_seconds": 1.0})
    assert progress.completed() == pytest.approx(1 + 0.5)
    progress({"event": "epoch", "model": "cnn", "seed": 0, "epoch": 1000})
    assert progress.completed() == pytest.approx(1 + 0.95)  # never a whole run before it is done

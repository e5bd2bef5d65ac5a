"""`nncompare train`: one run in one process, and the same run on 2 processes with torchrun
(DistributedDataParallel, gloo on CPU) giving the same losses for the same effective batch size."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch.distributed

from nncompare import load_run
from nncompare.cli.main import main
from nncompare.store import Store

# measured 2026-11-28 on this test's data: the 2-process losses differ from the 1-process ones by at
# most 3e-8 relative (the gradient is summed in another order; on mnist1d after 3 epochs up to 6e-5,
# as rounding differences grow); a mistake in the sharding (a batch counted twice, a wrong scale)
# moves them by far more than 1e-4
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 24))
    y = (x[:, :12].sum(1) > x[:, 12:].sum(1)).astype(int)
    path = tmp_path_factory.mktemp("data") / "series.csv"
    path.write_text("".join(f"{label}," + ",".join(f"{v:.5f}" for v in row) + "\n" for label, row in zip(y, x)))
    return path


def test_train_one_process_stores_an_indexed_run(series_csv, tmp_path, capsys):
    assert main(["train", str(series_csv), "--model", "cnn", "--epochs", "2", "--seed", "1", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch 2: train loss" in out and "stored in" in out
    (comparison,) = Store(tmp_path).list_comparisons()
    (row,) = Store(tmp_path).list_runs(comparison["id"])
    run = load_run(row["path"])
    assert row["model"] == "cnn" and row["seed"] == 1 and run.config["seed"] == 1 and len(run.history) == 2
    assert json.loads((tmp_path / comparison["id"] / "summary.json").read_text())["best"] == "cnn"
    assert main(["train", str(series_csv), "--model", "cnnx", "--store", str(tmp_path)]) == 2
    assert "unknown model 'cnnx'" in capsys.readouterr().err
    assert main(["train", str(series_csv), "--model", "cnn", "--out", str(tmp_path)]) == 2  # the store: not empty
    assert "is not an empty folder" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="torch without gloo")
def test_two_processes_with_torchrun_match_one_process(series_csv, tmp_path):
    # no batch norm: its statistics are each process's own half batch, which differ from the whole batch's
    args = ["train", str(series_csv), "--model", "cnn", "--norm", "none", "--epochs", "2", "--batch-size", "32", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "nncompare"]
    proc = subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=300)
    # a rank's own error (an abort's reason) comes first in stderr, the launcher's summary last
    causes = [line for line in proc.stderr.splitlines() if any(w in line for w in ("terminate", "what()", "Error", "error"))][:20]
    assert proc.returncode == 0, "\n".join(causes) + "\n...\n" + proc.stderr[-1500:]
    one, two = load_run(tmp_path / "one"), load_run(tmp_path / "two")
    assert two.config["distributed"] == {"world_size": 2, "backend": "gloo", "per_process_batch": 16}
    assert two.metrics["world_size"] == 2 and len(two.history) == len(one.history) == 2
    for a, b in zip(one.history, two.history):
        for key in ("train_loss", "val_loss"):
            assert b[key] == pytest.approx(a[key], rel=TOLERANCE), (a["epoch"], key)
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=1 / 96 + 1e-9)  # at most one example flips
    assert two.metrics["test_loss"] == pytest.approx(one.metrics["test_loss"], rel=TOLERANCE)
    # and the first epoch really trained: the weights moved from their shared start
    assert one.history[-1]["train_loss"] < one.history[0]["train_loss"]


@pytest.mark.parametrize("fields, option", [(dict(refit=True), "`refit=True`"), (dict(augment=True), "`augment=True`"), (dict(validation="none"), "`validation='none'`")])
def test_one_run_refuses_the_options_of_compare_alone(fields, option, tmp_path):
    import nncompare
    from nncompare.runs.distributed import train_run
    from nncompare.train import TrainConfig

    with pytest.raises(nncompare.UserError, match=re.escape(f"one run (train_run, 'nncompare train') does not take {option}; a comparison does (compare, 'nncompare compare'), with `models='mlp'` and {option}")):
        train_run("digits", "mlp", config=TrainConfig(**fields), store=tmp_path)

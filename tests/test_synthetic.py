"""The long-memory tasks of Bai et al. 2018, exactly as defined, and their trivial baselines."""

import math

import numpy as np
import pytest
import torch

import nncompare
from nncompare.data import load_dataset
from nncompare.train import TrainConfig


def test_adding_problem_definition():
    d = load_dataset("adding:50")
    assert d.meta.task == "regress" and d.meta.input_shape == (50, 2) and d.meta.n_outputs == 1
    assert d.sizes() == {"train": 4000, "val": 500, "test": 1000}
    x, y = d.train.x.numpy(), d.train.y.numpy()
    values, markers = x[:, :, 0], x[:, :, 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and set(np.unique(markers)) == {0.0, 1.0}
    assert (markers[:, :25].sum(1) == 1).all() and (markers[:, 25:].sum(1) == 1).all()  # one per half
    np.testing.assert_allclose(y, (values * markers).sum(1), rtol=1e-6)
    assert d.train.y.dtype == torch.float32
    assert torch.equal(load_dataset("adding:50").test.x, d.test.x)  # deterministic
    assert not torch.equal(d.train.x[:100], d.test.x[:100])  # splits come from different streams


def test_adding_baseline_is_the_variance_of_the_sum():
    d = load_dataset("adding:100")
    b = d.meta.baseline
    assert b["expected"] == pytest.approx(1 / 6)
    assert b["measured"] == pytest.approx(float(((d.test.y - 1) ** 2).mean()))
    assert abs(b["measured"] - 1 / 6) < 0.02


def test_copy_memory_definition():
    t = 30
    d = load_dataset(f"copy:{t}")
    assert d.meta.task == "per_step" and d.meta.input_shape == (t + 20, 10) and d.meta.n_classes == 10
    symbols = d.train.x.argmax(-1).numpy()  # (N, T+20)
    assert (d.train.x.sum(-1) == 1).all()  # one-hot
    digits = symbols[:, :10]
    assert ((digits >= 1) & (digits <= 8)).all()
    assert (symbols[:, 10 : 10 + t - 1] == 0).all()  # T - 1 blanks
    assert (symbols[:, -11:] == 9).all()  # the delimiter and ten more 9s
    y = d.train.y.numpy()
    assert (y[:, :-10] == 0).all() and (y[:, -10:] == digits).all()


def test_copy_baseline_is_the_memoryless_cross_entropy():
    t = 30
    d = load_dataset(f"copy:{t}")
    n, total = len(d.test), t + 20
    logits = torch.full((n, total, 10), -1e9)
    logits[:, : total - 10, 0] = 0.0  # certain of a blank until the last ten positions
    logits[:, total - 10 :, 1:9] = 0.0  # then uniform over the digits 1..8
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), d.test.y.reshape(-1)).item()
    assert ce == pytest.approx(d.meta.baseline["expected"], rel=1e-6)
    assert d.meta.baseline["expected"] == pytest.approx(10 * math.log(8) / (t + 20))


@pytest.mark.parametrize("source", ["adding:1", "copy:0", "adding:ten", "copy:-5"])
def test_bad_lengths_are_user_errors(source):
    with pytest.raises(nncompare.UserError, match="T must be"):
        load_dataset(source)


@pytest.mark.parametrize("source, score", [("adding:12", "test MSE"), ("copy:6", "test loss")])
def test_compare_runs_the_tasks_and_ranks_by_their_score(tmp_path, source, score):
    result = nncompare.compare(source, models=["tcn", "gru"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1)
    assert [r["score_name"] for r in result.rows] == [score, score]
    scores = {r["model"]: r["score_mean"] for r in result.rows}
    assert result.best == min(scores, key=scores.get)  # lower is better for a loss
    assert result.config["dataset_meta"]["baseline"]["score_name"] == score
    for run in result.runs:
        assert run["status"] == "done" and math.isfinite(run["score"]) and run["score"] > 0

"""The overfit check: a learnable batch passes, and each way of failing gets its own diagnosis."""

import json

import pytest
import torch

from nncompare import UserError
from nncompare.cli.main import main
from nncompare.data.base import Dataset, DatasetMeta, make_split
from nncompare.models import create_model
from nncompare.train.sanity import _DeadUnits, attainable_accuracy, check_model, diagnose, sanity
from nncompare.utils import set_seed


def series_data(x, y, task="classify"):
    meta = DatasetMeta(name="toy", kind="series", task=task, input_shape=tuple(x.shape[1:]), n_classes=0 if task == "regress" else int(y.max()) + 1, n_outputs=1 if task == "regress" else 0)
    split = make_split(x.numpy(), y.numpy())
    return Dataset(train=split, val=split, test=split, meta=meta)


def batch(data):
    return data.train.x, data.train.y, data.train.lengths


def check(data, name="mlp", lr=3e-3, steps=300, **model_args):
    set_seed(0)
    family = {"mlp": "feed-forward", "cnn": "convolutional", "rnn": "recurrent"}[name]
    model = create_model(name, data.meta, **model_args)
    return check_model(model, name, family, data.meta, batch(data), lr=lr, steps=steps)


def random_batch(n=64, length=10, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, length, 1, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_a_learnable_batch_passes_early():
    r = check(series_data(*random_batch()), dropout=0.0)
    assert r.passed and r.verdict == "pass" and r.hint == ""
    assert r.steps < 300 and r.final_loss < 0.05 and r.train_acc == 1.0 and r.target_acc == 1.0
    assert r.initial_loss > 0.8  # about ln 3 at the start


def test_the_same_input_with_two_labels_cannot_be_fit():
    x, y = random_batch()
    x[1] = x[0]
    y[0], y[1] = 0, 1
    r = check(series_data(x, y), dropout=0.0, steps=50)
    assert not r.passed
    assert r.measured["conflicting"] == 2 and r.target_acc == pytest.approx(63 / 64)
    assert r.hint.startswith("labels that cannot be fit: 2 of the 64 examples")


def test_a_huge_learning_rate_is_diagnosed():
    x, _ = random_batch(n=32, length=6)
    r = check(series_data(x, x[:, :, 0].sum(1), task="regress"), lr=1e6, steps=50, dropout=0.0)
    assert not r.passed and "learning rate too high; try `lr=100000`" in r.hint


def test_a_tiny_learning_rate_is_diagnosed():
    r = check(series_data(*random_batch()), lr=1e-9, steps=20, dropout=0.0)
    assert not r.passed and r.steps == 20
    assert "loss stuck" in r.hint and "learning rate too low; try `lr=1e-08`" in r.hint


def test_a_vanilla_rnn_on_a_long_sequence_is_told_its_gradients_vanish():
    # the label is in the first step only; every later step is zero, so nothing else can be memorised
    x = torch.zeros(64, 150, 1)
    y = torch.arange(64) % 2
    x[:, 0, 0] = y.float() * 2 - 1
    r = check(series_data(x, y), name="rnn", lr=1e-3, steps=30)
    assert not r.passed
    assert r.measured["time_gradient_ratio"] < 1e-4
    assert "gradients vanish through time" in r.hint and "lstm, gru" in r.hint


def test_lr_10_fails_every_model_and_names_the_learning_rate():
    results = sanity("digits", lr=10.0, steps=100)
    assert [r.model for r in results] == ["mlp", "cnn", "tcn", "rnn", "lstm", "gru"]
    for r in results:
        assert not r.passed and "learning rate too high; try `lr=1`" in r.hint, (r.model, r.hint)


def test_labels_that_are_noise_beyond_what_the_batch_size_allows_are_reported_as_not_fitted():
    x, y = random_batch(n=1000, length=10, classes=10, seed=3)  # every label drawn at random
    r = check(series_data(x, y), dropout=0.0, width=16, steps=40)
    assert not r.passed and r.train_acc < 0.5 and r.steps == 40
    assert "not fitted within 40 steps" in r.hint or "loss stuck" in r.hint


def test_regression_passes_below_one_percent_of_the_target_variance():
    x, _ = random_batch(n=32, length=6)
    y = x[:, :, 0].sum(1)
    r = check(series_data(x, y, task="regress"), dropout=0.0, steps=1000)
    assert r.passed and r.train_acc is None and r.target_acc is None
    assert r.final_loss < 0.01 * float(y.var(unbiased=False)) == pytest.approx(r.measured["goal_mse"])


def test_attainable_accuracy_counts_conflicts():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, 4.0]])
    assert attainable_accuracy(x, torch.tensor([0, 0, 1, 1]), "classify") == (0.75, 3)
    # padded series: only the real steps count as the input
    lengths = torch.tensor([1, 1, 2, 2])
    assert attainable_accuracy(torch.tensor([[1.0, 5.0], [1.0, 6.0], [2.0, 2.0], [2.0, 3.0]]), torch.tensor([0, 1, 0, 1]), "classify", lengths) == (0.75, 2)
    # next-step targets: after prefix "1" comes 2 once and 3 once; longer prefixes are unique
    ids = torch.tensor([[1, 2], [1, 3]])
    targets = torch.tensor([[2, 7], [3, 8]])
    assert attainable_accuracy(ids, targets, "per_step") == (0.75, 2)


def test_dead_units_are_counted_per_unit_and_position():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([-1.0, -1.0, -1.0, 1.0]))
    counter = _DeadUnits(net)
    net(torch.randn(8, 3))
    assert counter.close() == 0.75
    assert not net[1]._forward_hooks  # hooks removed


@pytest.mark.parametrize(
    "losses, measured, expected",
    [
        ([2.0, 1.95], {"dead_relu_share": 0.8, "examples": 64}, "80% of ReLU units never active"),
        ([2.0, 1.95], {"time_gradient_ratio": 1e6, "examples": 64}, "gradients explode through time"),
        ([2.0, 1.95], {"first_step_gradient_norms": {"a": 1.0, "b.weight": 5e3}, "examples": 64}, "exploding gradients (norm 5.0e+03 in b.weight)"),
        ([2.0, 0.5], {"examples": 64}, "loss falling (2 -> 0.5) but the batch is not fitted within 100 steps; give it more steps (`steps=400`)"),
        ([2.0, 1.5], {"time_gradient_ratio": 1e-9, "examples": 64}, "gradients vanish through time (the first step gets 1.0e-09 of the last step's gradient)"),
        ([2.0, 900.0, 1.95], {"dead_relu_share": 1.0, "examples": 64}, "loss jumped to 900 (from 2) and ended stuck at 1.95: learning rate too high; try `lr=0.001`"),
        ([2.0, 1.9], {"time_gradient_ratio": 0.0, "examples": 64}, "no gradient at all reaches the first step"),
        ([2.0, float("nan")], {"examples": 64}, "loss became nan at step 2"),
    ],
)
def test_diagnosis_names_the_likeliest_cause(losses, measured, expected):
    assert expected in diagnose(losses, measured, "classify", lr=0.01, steps=100, family="recurrent")


def test_sanity_turns_extras_off_and_checks_every_model_named():
    results = sanity("digits", models="mlp,cnn", steps=200)
    assert [r.model for r in results] == ["mlp", "cnn"]
    assert results[0].model_args == {"dropout": 0.0, "norm": "none"} and results[1].model_args == {"dropout": 0.0, "norm": "none"}
    assert all(r.measured["examples"] == 64 for r in results)
    assert results[0].passed and json.dumps(results[0].to_dict())  # plain data, stored as JSON


def test_same_seed_same_result():
    a, b = (sanity("digits", models="cnn", steps=20)[0] for _ in range(2))
    assert a.final_loss == b.final_loss and a.steps == b.steps


@pytest.mark.parametrize("kwargs, message", [({"examples": 0}, "examples must be a positive whole number"), ({"steps": -1}, "steps must be a positive whole number"), ({"lr": -1.0}, "lr must be a positive number")])
def test_bad_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        sanity("digits", models="mlp", **kwargs)


def test_cli_exit_codes_and_table(tmp_path, capsys):
    assert main(["sanity", "digits", "--model", "mlp", "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "overfit check" in out and "pass" in out and "100.0%" in out

    rows = [["label"] + [f"t{i}" for i in range(8)]]
    for i in range(30):
        rows.append([str(i % 2)] + [str(float(i % 3))] * 8)  # three distinct inputs, both labels each
    path = tmp_path / "clash.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    assert main(["sanity", str(path), "--model", "mlp", "--steps", "20", "--no-normalize"]) == 1
    out = capsys.readouterr().out
    assert "fail" in out and "labels that cannot be fit" in out

    store = tmp_path / "store"
    assert main(["compare", str(path), "--models", "mlp", "--sanity", "--store", str(store), "--no-normalize", "--quiet"]) == 1
    assert "nothing compared" in capsys.readouterr().out
    assert not store.exists() or not any(p.is_dir() for p in store.iterdir())  # no comparison stored

    assert main(["sanity", "digits", "--examples", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err

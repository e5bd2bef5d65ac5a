"""The training loop: it learns, early stopping restores the best weights, the same seed repeats
exactly, budgets are respected, bad settings are refused."""

import math
from dataclasses import replace

import pytest
import torch

import nncompare
from nncompare.data.base import Dataset, make_split
from nncompare.data.base import DatasetMeta
from nncompare.data import load_dataset
from nncompare.models import create_model
from nncompare.train import TrainConfig, evaluate, fit
from nncompare.utils import set_seed


def toy_dataset(n=240, length=8, seed=0):
    """Class = sign of the mean of the first half of the series: learnable, a little noisy."""
    g = torch.Generator().manual_seed(seed)

    def make(m):
        x = torch.randn(m, length, 1, generator=g)
        y = (x[:, : length // 2, 0].mean(1) > 0).long()
        return make_split(x.numpy(), y.numpy())

    meta = DatasetMeta(name="toy", kind="series", task="classify", input_shape=(length, 1), n_classes=2)
    return Dataset(train=make(n), val=make(n // 4), test=make(n // 4), meta=meta)


def trained(model_name="mlp", **cfg):
    data = toy_dataset()
    set_seed(0)
    model = create_model(model_name, data.meta)
    result = fit(model, data, TrainConfig(**{"lr": 3e-3, "validation": "split", **cfg}))  # the toy set is small: "auto" would hold no split out
    return model, data, result


def test_training_learns_the_toy_task():
    model, data, result = trained("mlp", max_epochs=30, lr=3e-3, patience=30)
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"] * 0.6
    assert result.metrics["test_acc"] > 0.8
    assert set(first) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    assert [row["epoch"] for row in result.history] == list(range(1, len(result.history) + 1))


def test_early_stopping_restores_best_weights():
    # a high learning rate and no dropout overfit the 240 examples: validation loss turns up, training stops
    data = toy_dataset()
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=256)
    result = fit(model, data, TrainConfig(max_epochs=200, lr=1e-2, patience=4, validation="split"))
    m = result.metrics
    assert m["stop_reason"] == "early_stopping"
    assert m["epochs"] == m["best_epoch"] + 4
    best_val = min(row["val_loss"] for row in result.history)
    assert result.history[m["best_epoch"] - 1]["val_loss"] == best_val
    # the weights in the model now are the best epoch's: evaluating them gives that epoch's val loss
    val_loss, val_acc = evaluate(model, data.val.x, data.val.y)
    assert math.isclose(val_loss, best_val, rel_tol=1e-5)
    assert math.isclose(val_acc, result.history[m["best_epoch"] - 1]["val_acc"])
    assert m["train_acc"] == result.history[m["best_epoch"] - 1]["train_acc"] > 0.5  # the kept epoch's training accuracy


@pytest.mark.parametrize("name", ["cnn", "gru"])
def test_same_seed_same_numbers(name):
    _, _, a = trained(name, max_epochs=3, seed=5)
    _, _, b = trained(name, max_epochs=3, seed=5)
    _, _, c = trained(name, max_epochs=3, seed=6)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]
    assert strip(a.history) == strip(b.history)
    assert a.metrics["test_loss"] == b.metrics["test_loss"]
    assert strip(a.history) != strip(c.history)


def test_shuffle_order_comes_from_the_seed_not_the_global_generator():
    """Drawing from torch's global generator between runs does not change the batches."""
    data = toy_dataset()
    results = []
    for burn in (0, 1000):
        set_seed(0)
        model = create_model("mlp", data.meta, dropout=0.0)
        torch.rand(burn)  # disturb the global stream after initialisation
        results.append(fit(model, data, TrainConfig(max_epochs=2, seed=3, lr=1e-3)).history[-1]["train_loss"])
    assert results[0] == results[1]


def test_max_epochs_and_max_seconds_are_respected():
    _, _, r = trained("mlp", max_epochs=2, patience=50)
    assert r.metrics["epochs"] == 2 and r.metrics["stop_reason"] == "max_epochs"
    _, _, r = trained("gru", max_epochs=500, patience=500, max_seconds=1e-9)  # any epoch takes longer
    assert r.metrics["epochs"] == 1 and r.metrics["stop_reason"] == "max_seconds"


def test_metrics_are_complete_and_sane():
    _, data, r = trained("cnn", max_epochs=2)
    m = r.metrics
    assert 0 <= m["test_acc"] <= 1 and m["test_loss"] > 0
    assert m["train_seconds"] > 0 and m["inference_per_second"] > 0
    assert 1 <= m["best_epoch"] <= m["epochs"]


def test_gradient_clipping_bounds_each_step():
    """With clip=c the update of a parameter that gets the whole gradient is Adam-bounded; here we check
    the clipped gradient norm directly through a hook on the optimizer step."""
    data = toy_dataset()
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0)
    norms = []
    original_step = torch.optim.Adam.step

    def spy(self, *a, **k):
        norms.append(torch.sqrt(sum(p.grad.square().sum() for p in model.parameters())).item())
        return original_step(self, *a, **k)

    torch.optim.Adam.step = spy
    try:
        fit(model, data, TrainConfig(max_epochs=1, clip=0.05, lr=1.0))
    finally:
        torch.optim.Adam.step = original_step
    assert norms and max(norms) <= 0.05 + 1e-6


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lr", 0, "lr must be a positive number"),
        ("lr", float("nan"), "lr must be a positive number"),
        ("batch_size", 0, "batch_size must be a positive whole number"),
        ("max_epochs", 2.5, "max_epochs must be a positive whole number"),
        ("patience", 0, "patience must be a positive whole number"),
        ("max_seconds", -1, "max_seconds must be a positive number"),
        ("clip", -0.1, "clip must be 0"),
        ("seed", -1, "seed must be a non-negative whole number"),
    ],
)
def test_bad_settings_are_user_errors(field, value, message):
    with pytest.raises(nncompare.UserError, match=message):
        TrainConfig(**{field: value}).validate()


def test_unavailable_device_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    data = toy_dataset()
    model = create_model("mlp", data.meta)
    with pytest.raises(nncompare.UserError, match="no CUDA GPU is available"):
        fit(model, data, TrainConfig(device="cuda", lr=1e-3))


def test_train_api_returns_model_and_result():
    net, result = nncompare.train("digits", "gru", seed=1, config=TrainConfig(max_epochs=1))
    assert isinstance(net, torch.nn.Module)
    assert result.config.seed == 1 and len(result.history) == 1
    assert result.config.lr == 1e-2  # the GRU's recommended rate, filled in when none is given


def test_fit_without_a_learning_rate_is_a_programming_error():
    data = toy_dataset()
    with pytest.raises(ValueError, match="needs a learning rate"):
        fit(create_model("mlp", data.meta), data, TrainConfig())


def test_default_budget_grows_on_small_data_and_explicit_values_are_kept():
    from nncompare.train.steps import epoch_budget

    assert epoch_budget(TrainConfig(), steps_per_epoch=29) == (40, 10)  # MNIST-1D: as is
    assert epoch_budget(TrainConfig(), steps_per_epoch=9) == (120, 30)  # digits: at least 1000 steps
    assert epoch_budget(TrainConfig(), steps_per_epoch=1) == (1000, 250)  # a UCR set of 40 series
    assert epoch_budget(TrainConfig(max_epochs=2), steps_per_epoch=1) == (2, 10)  # the user's word
    assert epoch_budget(TrainConfig(patience=3), steps_per_epoch=1) == (1000, 3)


def test_small_data_trains_for_the_scaled_default_budget():
    data = toy_dataset(n=100)  # one batch: one step an epoch
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=16)
    r = fit(model, data, TrainConfig(lr=1e-3))
    assert r.metrics["max_epochs"] == 1000
    assert r.metrics["epochs"] > 40  # more than the unscaled default


def test_planned_epochs_are_the_budget_a_run_works_out():
    """The progress display's ETA divides each run's epoch by its model's planned budget: the same
    number run_epochs reports, under either protocol."""
    from nncompare.train.protocol import planned_epochs

    for n, cfg in ((100, {}), (240, {"patience": 2}), (1200, {"patience": 2}), (100, {"max_epochs": 3})):
        data = toy_dataset(n=n)
        config = TrainConfig(lr=1e-3, **cfg)
        set_seed(0)
        r = fit(create_model("mlp", data.meta, dropout=0.0, width=16), data, config)
        assert planned_epochs(config, data) == r.metrics["max_epochs"], (n, cfg)
    assert [planned_epochs(TrainConfig(**cfg), toy_dataset(n=n)) for n, cfg in ((100, {}), (240, {}), (1200, {}), (100, {"max_epochs": 3}))] == [1000, 360, 120, 3]


def test_refit_trains_on_train_plus_val_for_the_chosen_epoch_count():
    data = toy_dataset()
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=32)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(max_epochs=60, lr=1e-2, patience=5, batch_size=1000, clip=0.0, refit=True)
    result = fit(model, data, cfg)
    m = result.metrics
    assert m["refit_epochs"] == m["best_epoch"] >= 1
    selection = [r for r in result.history if "phase" not in r]
    refit = [r for r in result.history if r.get("phase") == "refit"]
    assert len(refit) == m["best_epoch"] and len(selection) + len(refit) == m["epochs"]
    assert m["val_loss"] == selection[m["best_epoch"] - 1]["val_loss"]  # validation scores: the selection phase's
    assert [r["epoch"] for r in result.history] == list(range(1, m["epochs"] + 1))

    # the same weights as plain full-batch Adam from the same start on every labelled example
    set_seed(0)
    bare = create_model("mlp", data.meta, dropout=0.0, width=32)
    bare.load_state_dict(initial)
    opt = torch.optim.Adam(bare.parameters(), lr=1e-2)
    x, y = torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y])
    bare.train()
    for _ in range(m["best_epoch"]):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(bare(x), y).backward()
        opt.step()
    for (name, a), b in zip(model.state_dict().items(), bare.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    test_loss, _ = evaluate(model, data.test.x, data.test.y)
    assert math.isclose(m["test_loss"], test_loss, rel_tol=1e-6)


def test_refit_history_is_stored_with_a_phase_column():
    from nncompare.store import history_csv

    _, _, result = trained("mlp", max_epochs=6, patience=6, refit=True)
    lines = history_csv(result.history).splitlines()
    assert lines[0].split(",") == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "phase"]
    assert len(lines) == 1 + result.metrics["epochs"] and lines[-1].endswith(",refit")


def test_learning_rate_schedules_follow_their_shape():
    from nncompare.train.steps import make_optimizer

    def rates(schedule, steps=100):
        net = torch.nn.Linear(2, 1)
        opt, sched = make_optimizer(net, TrainConfig(lr=0.1, schedule=schedule), steps)
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
        return out

    assert rates("constant") == [0.1] * 100
    cosine = rates("cosine")
    assert cosine[0] == 0.1 and cosine[50] == pytest.approx(0.05) and cosine[-1] == pytest.approx(0.1 * (1 - math.cos(math.pi / 100)) / 2)
    assert all(a >= b for a, b in zip(cosine, cosine[1:]))
    one = rates("onecycle")
    assert one[0] == pytest.approx(0.1 / 25) and max(one) == pytest.approx(0.1, rel=1e-3)
    assert 25 <= one.index(max(one)) <= 31 and one[-1] < 1e-3


def test_a_schedule_changes_training_and_is_recorded():
    _, _, constant = trained("mlp", max_epochs=5, patience=5)
    _, _, cosine = trained("mlp", max_epochs=5, patience=5, schedule="cosine")
    assert cosine.config.schedule == "cosine"
    assert cosine.history[0]["train_loss"] == constant.history[0]["train_loss"]  # the first steps are near the full rate
    assert cosine.history[-1]["train_loss"] != constant.history[-1]["train_loss"]
    with pytest.raises(nncompare.UserError, match="schedule must be one of constant, cosine, onecycle"):
        TrainConfig(schedule="linear").validate()


# -- validation="none" (--no-validation): the FCN / dl-4-tsc protocol for small data sets ----------------
def test_without_validation_every_labelled_example_is_trained_on_and_none_is_validated():
    data = toy_dataset()
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=32)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(max_epochs=8, lr=1e-3, patience=100, batch_size=1000, clip=0.0, validation="none")
    result = fit(model, data, cfg)
    assert all("val_loss" not in r and "val_acc" not in r for r in result.history)
    assert result.metrics["val_loss"] is None and result.metrics["epochs"] == 8 and result.metrics["stop_reason"] == "max_epochs"
    assert [r["lr"] for r in result.history] == [1e-3] * 8  # no plateau within patience 100
    # the weights of full-batch Adam on train+val (the toy loss falls every epoch: the last epoch is the kept one)
    assert result.metrics["best_epoch"] == 8
    bare = create_model("mlp", data.meta, dropout=0.0, width=32)
    bare.load_state_dict(initial)
    opt = torch.optim.Adam(bare.parameters(), lr=1e-3)
    x, y = torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y])
    bare.train()
    for _ in range(8):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(bare(x), y).backward()
        opt.step()
    for (name, a), b in zip(model.state_dict().items(), bare.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_an_epoch_is_cut_into_batches_of_equal_size_at_most_the_batch_size():
    from nncompare.train.steps import batches

    assert [len(b) for b in batches(torch.arange(270), 128)] == [90, 90, 90]  # not 128, 128, 14
    assert [len(b) for b in batches(torch.arange(140), 128)] == [70, 70]
    assert [len(b) for b in batches(torch.arange(3600), 128)] == [125] * 4 + [124] * 25  # 29 steps, as 128 gives
    assert [len(b) for b in batches(torch.arange(50), 128)] == [50]
    assert batches(torch.arange(0), 128) == ()  # nothing to cut: no step, as range(0, 0, 128) gave
    order = torch.randperm(101)
    assert torch.equal(torch.cat(batches(order, 16)), order)  # every example once, in the shuffled order

    sizes = []  # what the model sees while it trains: every epoch the same equal sizes
    data = toy_dataset(n=216)  # train + val = 270 under validation "none"
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=8)
    model.register_forward_pre_hook(lambda m, inputs: sizes.append(len(inputs[0])) if m.training else None)
    fit(model, data, TrainConfig(max_epochs=2, lr=1e-3, batch_size=128, validation="none", fitted_loss=0))
    assert sizes[:6] == [90] * 6


def _noisy_run(patience=2, epochs=30):
    """A run whose training loss goes up and down (a rate far too high), with every epoch's weights."""
    data = toy_dataset(n=64)
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=32)
    snapshots = []
    cfg = TrainConfig(max_epochs=epochs, lr=0.3, patience=patience, batch_size=16, clip=0.0, validation="none")
    result = fit(model, data, cfg, on_epoch=lambda row: snapshots.append({k: v.clone() for k, v in model.state_dict().items()}))
    return model, data, result, snapshots


def test_without_validation_the_rate_halves_after_patience_epochs_without_a_lower_training_loss():
    from nncompare.train.config import MIN_LR_FRACTION

    _, _, result, _ = _noisy_run(patience=2)
    lrs, losses = [r["lr"] for r in result.history], [r["train_loss"] for r in result.history]
    # the rule, written out: after each epoch, a loss below best * (1 - 1e-4) resets the count of bad
    # epochs; when that count exceeds the patience the rate is halved (not below 1/10 of the start)
    lr, best, bad, expected = 0.3, math.inf, 0, []
    for loss in losses:
        expected.append(lr)
        if loss < best * (1 - 1e-4):
            best, bad = loss, 0
        else:
            bad += 1
        if bad > 2:
            lr, bad = max(lr * 0.5, 0.3 * MIN_LR_FRACTION), 0
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[-1] < 0.3 and 0.15 in lrs  # it did halve, at least once
    assert min(lrs) >= 0.3 * MIN_LR_FRACTION - 1e-12


def test_without_validation_the_weights_kept_are_those_of_the_lowest_training_loss():
    model, data, result, snapshots = _noisy_run(patience=2)
    losses = [r["train_loss"] for r in result.history]
    lowest = min(range(len(losses)), key=losses.__getitem__)
    assert lowest != len(losses) - 1  # the last epoch is not the best one: the test can tell them apart
    assert result.metrics["best_epoch"] == lowest + 1 and result.metrics["best_train_loss"] == losses[lowest]
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[lowest][name]), name
    test_loss, _ = evaluate(model, data.test.x, data.test.y)
    assert math.isclose(result.metrics["test_loss"], test_loss, rel_tol=1e-6)


def _separable_run(fitted_loss, task="classify", epochs=60):
    """A run without validation on data it fits quickly: the class is the sign of the first step."""
    g = torch.Generator().manual_seed(0)

    def make(m):
        x = torch.randn(m, 8, 1, generator=g)
        y = x[:, 0, 0] if task == "regress" else (x[:, 0, 0] > 0).long()
        return make_split(x.numpy(), y.numpy())

    shape = dict(n_classes=0, n_outputs=1) if task == "regress" else dict(n_classes=2)
    meta = DatasetMeta(name="sep", kind="series", task=task, input_shape=(8, 1), **shape)
    data = Dataset(train=make(96), val=make(0), test=make(32), meta=meta)
    set_seed(0)
    model = create_model("mlp", data.meta, dropout=0.0, width=32)
    return fit(model, data, TrainConfig(max_epochs=epochs, lr=0.03, batch_size=96, validation="none", fitted_loss=fitted_loss))


def test_without_validation_a_run_stops_at_the_first_epoch_whose_training_loss_is_below_fitted_loss():
    result = _separable_run(0.05)
    losses = [r["train_loss"] for r in result.history]
    first = next(i for i, loss in enumerate(losses) if loss < 0.05)
    assert 1 < len(losses) == first + 1 < 60  # it stopped there, and not at once
    assert result.metrics["stop_reason"] == "fitted" and result.metrics["epochs"] == first + 1
    assert result.metrics["best_epoch"] == first + 1  # the fitted epoch has the lowest loss so far: its weights are kept
    full = _separable_run(0.0)  # 0: every epoch is trained, and the first ones are the same run's
    assert full.metrics["stop_reason"] == "max_epochs" and len(full.history) == 60
    assert [r["train_loss"] for r in full.history[: first + 1]] == losses


def test_without_validation_a_regression_run_is_never_stopped_as_fitted():
    result = _separable_run(1e9, task="regress", epochs=5)  # any loss is below 1e9; the rule is for cross-entropy
    assert result.metrics["stop_reason"] == "max_epochs" and len(result.history) == 5


def test_a_fitted_loss_set_where_it_does_nothing_gets_a_note():
    from nncompare.train.protocol import unused_fitted_loss_note

    data = toy_dataset()  # 300 labelled examples: "auto" holds no split out
    assert unused_fitted_loss_note(TrainConfig(), data) is None  # the default says nothing
    assert unused_fitted_loss_note(TrainConfig(fitted_loss=0.5), data) is None  # it applies here
    assert "hold a validation split out" in unused_fitted_loss_note(TrainConfig(fitted_loss=0.5, validation="split"), data)
    regress = replace(data, meta=replace(data.meta, task="regress", n_classes=0, n_outputs=1))
    assert "stops classifiers only" in unused_fitted_loss_note(TrainConfig(fitted_loss=0.5), regress)


@pytest.mark.parametrize("value", [-1e-4, math.nan, math.inf, True])
def test_a_fitted_loss_that_is_not_0_or_a_positive_loss_is_refused(value):
    with pytest.raises(nncompare.UserError, match="fitted_loss must be 0 \\(off\\) or a positive training loss"):
        TrainConfig(fitted_loss=value).validate()


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(refit=True), "validation='none' and refit=True cannot be combined"),
        (dict(labels=20), "validation='none' and labels cannot be combined"),
        (dict(schedule="cosine"), "cannot be combined with schedule='cosine'"),
        (dict(validation="holdout"), "validation must be one of auto, split, none, got 'holdout'"),
    ],
)
def test_without_validation_settings_that_make_no_sense_are_refused(fields, message):
    cfg = TrainConfig(lr=1e-2, **{"validation": "none", **fields})
    with pytest.raises(nncompare.UserError, match=message):
        cfg.validate()


def test_denormals_are_flushed_while_a_run_trains_on_the_cpu_and_the_setting_restored_after():
    """Gradients fading back through a long sequence reach denormal numbers, which x86 handles about a
    hundred times slower; the trainer flushes them to zero for the run, then puts the caller's setting back."""
    from nncompare.train.steps import denormals_flushed

    seen = []
    data = toy_dataset()
    for caller_flushes in (False, True):
        torch.set_flush_denormal(caller_flushes)
        try:
            set_seed(0)
            fit(create_model("gru", data.meta, hidden_size=4), data, TrainConfig(lr=3e-3, max_epochs=2), on_epoch=lambda *a, **k: seen.append(denormals_flushed()))
            assert denormals_flushed() is caller_flushes
        finally:
            torch.set_flush_denormal(False)
    assert seen == [True] * 4
    assert torch.tensor([1e-39]).item() != 0.0  # denormals back on for the rest of the tests


def test_flushing_denormals_makes_numpy_warn_of_nothing(tmp_path):
    """numpy measures its float limits on first use and warns ("the smallest subnormal is zero") when that
    happens with denormals flushed; the trainer has it measure them before. A fresh process, warnings as errors."""
    import subprocess
    import sys

    code = (
        "import torch, numpy as np\n"
        "from nncompare.train.loop import flush_denormals\n"
        "with flush_denormals('cpu'):\n"
        "    print(np.finfo(np.float32).smallest_subnormal, np.finfo(np.float64).tiny)\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "subnormal" not in done.stderr


def test_auto_validation_holds_no_split_out_of_a_small_training_set():
    from dataclasses import replace as _replace

    from nncompare.train.protocol import SMALL_TRAINING_SET, protocol_note, resolve_validation

    small, large = load_dataset("ucr:ItalyPowerDemand"), load_dataset("digits")
    assert len(small.train) + len(small.val) < SMALL_TRAINING_SET <= len(large.train) + len(large.val)
    auto = TrainConfig()
    assert auto.validation == "auto"
    assert resolve_validation(auto, small).validation == "none" and resolve_validation(auto, large).validation == "split"
    assert resolve_validation(TrainConfig(validation="split"), small).validation == "split"  # an explicit choice stays
    assert resolve_validation(TrainConfig(refit=True), small).validation == "split"  # refit needs the split
    assert "67 labelled training examples" in protocol_note(auto, small) and protocol_note(auto, large) is None
    # fit applies it: a small set's run trains on train + val and says so in its metrics
    set_seed(0)
    result = fit(create_model("mlp", small.meta), small, _replace(auto, max_epochs=2, lr=3e-3))
    assert result.metrics["validation"] == "none"


def _first_norm_inputs(model, x, lengths=None):
    """What the CNN's first batch norm receives for `x` in eval mode: (N, channels, L)."""
    norm = model.features[0][1]
    seen = []
    handle = norm.register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    model.eval()
    with torch.no_grad():
        model(x) if lengths is None else model(x, lengths)
    handle.remove()
    return norm, seen[0]


def test_batch_norm_statistics_are_the_mean_and_variance_over_the_given_data_for_the_weights_now():
    from conftest import series_meta
    from nncompare.train.steps import batch_norm_statistics

    torch.manual_seed(0)
    model = create_model("cnn", series_meta(length=12, channels=2), norm="batch", channels=4, dropout=0.5)
    x = torch.randn(30, 12, 2) * 3 + 1
    norm, h = _first_norm_inputs(model, x)  # the first convolution's outputs (before any batch norm)
    norm.running_mean.fill_(5.0)  # stale averages, as a run leaves them
    rng = torch.get_rng_state()
    assert batch_norm_statistics(model, x, None, batch_size=30) == 3  # one per convolution
    assert torch.allclose(norm.running_mean, h.mean((0, 2)), atol=1e-5)
    assert torch.allclose(norm.running_var, h.transpose(0, 1).reshape(4, -1).var(1), rtol=1e-4)
    assert not model.training and norm.momentum == 0.1  # eval mode and torch's momentum back
    assert torch.equal(torch.get_rng_state(), rng)  # dropout stayed off: no random number drawn
    # in batches of equal size the running mean is the mean over every batch, not a moving average;
    # 30 series at 11 are cut 10-10-10 (not 11-11-8, whose equal weights would favour the remnant)
    for batch_size in (10, 11):
        batch_norm_statistics(model, x, None, batch_size=batch_size)
        assert torch.allclose(norm.running_mean, h.mean((0, 2)), atol=1e-5)
    assert batch_norm_statistics(create_model("gru", series_meta(length=12, channels=2)), x, None, batch_size=8) == 0  # none to recompute


def test_batch_norm_statistics_of_padded_series_count_the_real_steps_only():
    from conftest import series_meta
    from nncompare.train.steps import batch_norm_statistics

    torch.manual_seed(0)
    model = create_model("cnn", series_meta(length=12, channels=2), norm="batch", channels=4)
    lengths = torch.tensor([12, 5, 9, 3, 12, 7])
    x = torch.randn(6, 12, 2) + 2
    for i, n in enumerate(lengths):
        x[i, n:] = 0.0  # padded as the loaders pad
    norm, h = _first_norm_inputs(model, x, lengths)
    batch_norm_statistics(model, x, lengths, batch_size=6)
    real = torch.cat([h[i, :, :n] for i, n in enumerate(lengths)], dim=1)  # (channels, real steps)
    assert torch.allclose(norm.running_mean, real.mean(1), atol=1e-5)
    assert torch.allclose(norm.running_var, real.var(1), rtol=1e-4)


def test_without_validation_the_kept_weights_are_tested_with_batch_norm_statistics_of_their_own():
    """The weights of the lowest training loss are kept as they were; their batch norms' running
    averages are recomputed over the training data for those weights, not left as the last epochs made them."""
    from nncompare.train.steps import all_labelled, batch_norm_statistics

    data = toy_dataset(n=64)
    set_seed(0)
    model = create_model("cnn", data.meta, norm="batch", channels=8)
    snapshots = []
    cfg = TrainConfig(max_epochs=30, lr=0.3, patience=2, batch_size=16, clip=0.0, validation="none")
    result = fit(model, data, cfg, on_epoch=lambda row: snapshots.append({k: v.clone() for k, v in model.state_dict().items()}))
    losses = [r["train_loss"] for r in result.history]
    lowest = min(range(len(losses)), key=losses.__getitem__)
    assert result.metrics["best_epoch"] == lowest + 1 and result.metrics["batch_norm_recomputed"] == 3
    kept = model.state_dict()
    for name, value in snapshots[lowest].items():
        if name.endswith("num_batches_tracked"):
            continue  # a count of batches, not a weight
        if "running_" in name:
            assert not torch.equal(kept[name], value), name  # recomputed: the epoch's moving averages are gone
        else:
            assert torch.equal(kept[name], value), name  # the weights are the lowest loss's
    again = create_model("cnn", data.meta, norm="batch", channels=8)
    again.load_state_dict(snapshots[lowest])
    x, _, lengths = all_labelled(data, "cpu")
    batch_norm_statistics(again, x, lengths, batch_size=16)
    for name, value in again.state_dict().items():
        assert torch.allclose(kept[name].float(), value.float(), atol=1e-6), name
    test_loss, _ = evaluate(model, data.test.x, data.test.y)
    assert math.isclose(result.metrics["test_loss"], test_loss, rel_tol=1e-6)


def test_a_step_whose_gradient_is_not_finite_is_skipped_and_counted():
    """An overflow in back-propagation cannot be clipped (inf x 0 is NaN): the step is skipped, the
    weights stay as they were, and the epoch's row and the run's metrics count it."""
    from nncompare.train.steps import optimizer_step

    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.Adam([w], lr=0.1)
    model = torch.nn.Module()
    model.w = w
    assert optimizer_step(model, optimizer, None, TrainConfig(), (w * torch.tensor([float("inf"), 1.0])).sum()) is False
    assert w.tolist() == [1.0, -2.0] and w.grad is None
    assert optimizer_step(model, optimizer, None, TrainConfig(), (w * w).sum()) is True
    assert w.tolist() != [1.0, -2.0] and torch.isfinite(w).all()
    # a NaN entry in a later tensor than a finite one is found too
    b = torch.nn.Parameter(torch.tensor([0.5]))
    model.b = b
    optimizer = torch.optim.Adam([w, b], lr=0.1)
    assert optimizer_step(model, optimizer, None, TrainConfig(), (w * w).sum() + b * torch.tensor([float("nan")])) is False
    assert torch.isfinite(w).all() and b.item() == 0.5
    # clip 0 turns the check off with the clipping: the step is taken, as the user asked
    assert optimizer_step(model, optimizer, None, TrainConfig(clip=0), (w * torch.tensor([float("inf"), 1.0])).sum()) is True
    assert torch.isnan(w).any()


def test_a_finite_gradient_whose_norm_overflows_is_clipped_in_its_own_direction():
    """Entries of 1e20 are finite, but their sum of squares overflows float32: torch's clip_grad_norm_
    alone would get an infinite norm and zero the gradient. The step goes the gradient's way at the
    clip norm; an ordinary gradient is clipped as clip_grad_norm_ clips it."""
    from nncompare.train.steps import optimizer_step

    w = torch.nn.Parameter(torch.zeros(2))
    model = torch.nn.Module()
    model.w = w
    sgd = torch.optim.SGD([w], lr=1.0)
    assert optimizer_step(model, sgd, None, TrainConfig(clip=1.0), (w * torch.tensor([3e20, 4e20])).sum()) is True
    assert torch.allclose(w.detach(), torch.tensor([-0.6, -0.8]), atol=1e-6)  # norm 1, direction (3, 4)
    w.data.zero_()
    assert optimizer_step(model, sgd, None, TrainConfig(clip=1.0), (w * torch.tensor([3.0, 4.0])).sum()) is True
    v = torch.nn.Parameter(torch.zeros(2))
    (v * torch.tensor([3.0, 4.0])).sum().backward()
    torch.nn.utils.clip_grad_norm_([v], 1.0)
    torch.optim.SGD([v], lr=1.0).step()
    assert torch.equal(w.detach(), v.detach())  # the same to the bit as torch's clipping


class Overflows(torch.nn.Module):
    """A tiny classifier whose backward pass overflows (a gradient of inf) on every third training call,
    or on every call after the `from_call`th."""

    def __init__(self, inner, from_call: int | None = None):
        super().__init__()
        self.inner, self.calls, self.from_call = inner, 0, from_call

    def forward(self, x, lengths=None):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if (self.calls % 3 == 0) if self.from_call is None else self.calls > self.from_call:
                out = _InfGradient.apply(out)  # the same values forward
        return out


class _InfGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def test_a_run_with_overflowing_gradients_keeps_finite_weights_and_reports_the_skips():
    data = toy_dataset()
    set_seed(0)
    model = Overflows(create_model("mlp", data.meta, dropout=0.0))
    result = fit(model, data, TrainConfig(max_epochs=3, batch_size=60, lr=3e-3, validation="split"))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    skipped = [row.get("skipped_steps", 0) for row in result.history]
    assert sum(skipped) == result.metrics["skipped_steps"] == 4  # 12 training steps, every third overflows
    assert result.metrics["stop_reason"] == "max_epochs" and math.isfinite(result.history[-1]["train_loss"])


def test_a_run_whose_every_step_is_skipped_for_ten_epochs_stops_as_stalled():
    """From the 9th step (epoch 3, 4 steps an epoch) every gradient overflows: the weights never change
    again, so the run stops after STALL_EPOCHS such epochs, keeping its best weights, instead of
    spending its remaining epochs; a run that skips only some steps trains on to its budget."""
    from nncompare.train.epochs import STALL_EPOCHS

    data = toy_dataset()
    config = TrainConfig(max_epochs=40, patience=100, batch_size=60, lr=3e-3, validation="split")
    set_seed(0)
    model = Overflows(create_model("mlp", data.meta, dropout=0.0), from_call=8)
    result = fit(model, data, config)
    assert result.metrics["stop_reason"] == "stalled" and result.metrics["epochs"] == 2 + STALL_EPOCHS
    assert [row.get("skipped_steps", 0) for row in result.history] == [0, 0] + [4] * STALL_EPOCHS
    assert result.metrics["best_epoch"] <= 2 and math.isfinite(result.metrics["score"])
    set_seed(0)
    model = Overflows(create_model("mlp", data.meta, dropout=0.0))
    assert fit(model, data, replace(config, max_epochs=2 + STALL_EPOCHS)).metrics["stop_reason"] == "max_epochs"


@pytest.mark.parametrize("way", ["mean teacher", "text streams"])
def test_every_way_of_training_counts_the_steps_it_skips(way, monkeypatch, tmp_path):
    """The semi-supervised mean teacher and text read as streams step through optimizer_step too: a
    gradient that is not finite is skipped there as well, and counted in the row and the metrics."""
    from nncompare.train import semi, streams
    from nncompare.train.steps import optimizer_step

    module = semi if way == "mean teacher" else streams
    calls = []

    def every_other_overflows(model, optimizer, scheduler, config, loss):
        calls.append(1)
        return optimizer_step(model, optimizer, scheduler, config, loss * (float("inf") if len(calls) % 2 == 0 else 1.0))

    monkeypatch.setattr(module, "optimizer_step", every_other_overflows)
    if way == "mean teacher":
        net, result = nncompare.train("digits", "mlp", seed=0, config=TrainConfig(labels=50, semi="meanteacher", max_epochs=2))
    else:
        path = tmp_path / "fox.txt"
        path.write_text("".join(f"the quick brown fox {i} jumps over the lazy dog\n" for i in range(120)), encoding="utf-8")
        net, result = nncompare.train(f"text:{path}", "gru", seed=0, config=TrainConfig(max_epochs=2), hidden_size=8)
    assert result.metrics["skipped_steps"] == len(calls) // 2 > 0
    assert sum(row.get("skipped_steps", 0) for row in result.history) == len(calls) // 2
    assert all(torch.isfinite(p).all() for p in net.parameters())

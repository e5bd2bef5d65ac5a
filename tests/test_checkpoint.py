"""Epoch-end checkpoints: a run stopped at an epoch end and resumed from its checkpoint ends with the
numbers, history and weights of a run that was never stopped, for every loop and its random streams
(dropout, augmentation, schedules, refit, both semi-supervised methods); a checkpoint that does not
fit is never used."""

import json
import math

import pytest
import torch

from nncompare.data import load_dataset
from nncompare.models import create_model
from nncompare.train import TrainConfig, fit
from nncompare.train.checkpoint import Checkpointer, RunInterrupted, install_stop_event, stray_files
from nncompare.utils import set_seed

TIMING = ("train_seconds", "inference_per_second")


class Stop(Exception):
    """Raised from the epoch callback: the process 'dies' at the end of that epoch."""


def _train(ds, model, config, run_dir=None, model_seed=0, stop_at=None, fingerprint="f"):
    set_seed(model_seed)
    net = create_model(model, ds.meta, **({"dropout": 0.3} if model == "gru" else {}))
    checkpoint = Checkpointer(run_dir, fingerprint) if run_dir is not None else None

    def on_epoch(row):
        if stop_at is not None and row["epoch"] == stop_at and "phase" not in row:
            raise Stop

    result = fit(net, ds, config, on_epoch=on_epoch, checkpoint=checkpoint)
    return net, result, checkpoint


def _same(a, b):
    """Two finished runs agree in everything but the clock."""
    net_a, res_a = a
    net_b, res_b = b
    strip = lambda h: [[(k, v) for k, v in row.items() if k != "seconds"] for row in h]  # column order too
    assert strip(res_a.history) == strip(res_b.history)
    assert {k: v for k, v in res_a.metrics.items() if k not in TIMING} == {k: v for k, v in res_b.metrics.items() if k not in TIMING}
    for (name, x), (_, y) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert torch.equal(x, y), name


CASES = {
    "mlp with dropout, constant rate": ("digits", "mlp", TrainConfig(lr=3e-3, max_epochs=4)),
    "cnn, augmentation, cosine schedule": ("digits", "cnn", TrainConfig(lr=1e-2, max_epochs=4, augment=True, schedule="cosine")),
    "gru with dropout, onecycle, refit": ("digits", "gru", TrainConfig(lr=1e-2, max_epochs=4, schedule="onecycle", refit=True)),
    "tcn, early stopping (patience 1)": ("digits", "tcn", TrainConfig(lr=5e-2, max_epochs=20, patience=1)),  # stops after epoch 10 on a 2-core CPU
    "semi-supervised, pseudo-labels": ("digits", "cnn", TrainConfig(lr=1e-2, max_epochs=4, labels=100, semi="pseudo")),
    "semi-supervised, mean teacher": ("digits", "cnn", TrainConfig(lr=1e-2, max_epochs=3, labels=100, semi="meanteacher")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(case, tmp_path):
    data, model, config = CASES[case]
    ds = load_dataset(data)
    uninterrupted = _train(ds, model, config)[:2]
    with pytest.raises(Stop):
        _train(ds, model, config, tmp_path, stop_at=2)
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["epoch"] == 1  # the epoch that ended before the stop
    # the resumed process starts from other weights and random states: everything must come from the checkpoint
    torch.manual_seed(12345)
    net, result, checkpoint = _train(ds, model, config, tmp_path, model_seed=99)
    assert checkpoint.resumed_at == 1 and checkpoint.notes == []
    _same(uninterrupted, (net, result))
    if config.patience == 1:  # the early-stopping counters came back too: it stops where the uninterrupted run did
        assert result.metrics["stop_reason"] == "early_stopping" and result.metrics["epochs"] < config.max_epochs


def test_a_run_without_validation_resumes_with_its_plateau_counters(tmp_path):
    # a rate so high that the CNN's training loss soon stalls, so the rate is halved (patience 1: after two
    # epochs in a row without a lower loss); which epochs stall depends on the CPU's rounding, so the
    # uninterrupted run is the reference: resumed after the first of the two, the run must know that epoch
    # was counted and halve when the uninterrupted run did
    ds = load_dataset("digits")
    config = TrainConfig(lr=0.3, max_epochs=16, patience=1, validation="none")
    uninterrupted = _train(ds, "cnn", config)[:2]
    rates = [row["lr"] for row in uninterrupted[1].history]
    assert 0.15 in rates, rates  # the test needs a halving within the run
    halved = rates.index(0.15) + 1  # the first epoch at the halved rate (1-based)
    assert halved >= 4 and rates[: halved - 1] == [0.3] * (halved - 1)
    with pytest.raises(Stop):
        _train(ds, "cnn", config, tmp_path, stop_at=halved - 1)
    torch.manual_seed(12345)
    net, result, checkpoint = _train(ds, "cnn", config, tmp_path, model_seed=99)
    assert checkpoint.resumed_at == halved - 2  # one epoch without a lower loss counted before the stop
    _same(uninterrupted, (net, result))
    assert [row["lr"] for row in result.history] == rates


def test_a_run_stopped_after_its_last_epoch_goes_straight_to_the_test(tmp_path):
    ds = load_dataset("digits")
    config = TrainConfig(lr=3e-3, max_epochs=2, refit=True)
    uninterrupted = _train(ds, "mlp", config)[:2]
    with pytest.raises(Stop):  # the refit phase never ran: the selection loop's last checkpoint holds its start
        def stop_in_refit(row):
            if row.get("phase") == "refit":
                raise Stop
        set_seed(0)
        fit(create_model("mlp", ds.meta), ds, config, on_epoch=stop_in_refit, checkpoint=Checkpointer(tmp_path, "f"))
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 2
    net, result, checkpoint = _train(ds, "mlp", config, tmp_path, model_seed=7)
    assert checkpoint.resumed_at == 2
    _same(uninterrupted, (net, result))


def test_a_damaged_or_foreign_checkpoint_is_never_used(tmp_path):
    ds = load_dataset("digits")
    config = TrainConfig(lr=3e-3, max_epochs=3)
    uninterrupted = _train(ds, "mlp", config)[:2]

    def stopped_run(name):
        with pytest.raises(Stop):
            _train(ds, "mlp", config, tmp_path / name, stop_at=3)
        return tmp_path / name

    run = stopped_run("flipped")
    tensors = run / json.loads((run / "checkpoint.json").read_text())["tensors"]
    data = bytearray(tensors.read_bytes())
    data[-5] ^= 0xFF  # one changed byte of a weight: the hash notices
    tensors.write_bytes(bytes(data))
    net, result, checkpoint = _train(ds, "mlp", config, run, model_seed=0)
    assert checkpoint.resumed_at is None and "does not match its recorded SHA-256" in checkpoint.notes[0]
    _same(uninterrupted, (net, result))  # started over: still the right numbers

    _, _, checkpoint = _train(ds, "mlp", config, stopped_run("foreign"), fingerprint="another configuration")
    assert checkpoint.resumed_at is None and "made with another configuration" in checkpoint.notes[0]

    run = stopped_run("garbled")
    (run / "checkpoint.json").write_text("{not json")
    _, _, checkpoint = _train(ds, "mlp", config, run)
    assert checkpoint.resumed_at is None and "unreadable" in checkpoint.notes[0]

    run = stopped_run("other-shapes")  # the same fingerprint, another architecture: the shapes refuse it
    set_seed(0)
    checkpoint = Checkpointer(run, "f")
    fit(create_model("mlp", ds.meta, width=16), ds, config, checkpoint=checkpoint)
    assert checkpoint.resumed_at is None and "(16, 64) torch.float32 is needed" in checkpoint.notes[0]


def test_the_stop_request_ends_a_run_after_one_step_and_keeps_the_last_checkpoint(tmp_path):
    import threading

    ds = load_dataset("digits")
    stop = threading.Event()
    steps = []

    def on_epoch(row):
        if row["epoch"] == 2:
            stop.set()  # as the first Ctrl-C does

    install_stop_event(stop)
    try:
        set_seed(0)
        net = create_model("mlp", ds.meta)
        net.register_forward_hook(lambda *a: steps.append(1) if net.training else None)
        with pytest.raises(RunInterrupted):
            fit(net, ds, TrainConfig(lr=3e-3, max_epochs=5), on_epoch=on_epoch, checkpoint=Checkpointer(tmp_path, "f"))
    finally:
        install_stop_event(None)
    per_epoch = math.ceil(len(ds.train) / 128)
    assert len(steps) == 2 * per_epoch + 1  # two epochs, then one step of the third
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 2
    assert stray_files(tmp_path) == []


def test_checkpoints_come_an_interval_apart_and_always_at_the_stop(tmp_path, monkeypatch):
    """With NNCOMPARE_CHECKPOINT_SECONDS an hour, a run stopped at epoch 2 has written no checkpoint (its
    resume starts over, to the same numbers), while a run whose loop stops writes one at that epoch."""
    ds = load_dataset("digits")
    config = TrainConfig(lr=5e-2, max_epochs=10, patience=1)
    monkeypatch.setenv("NNCOMPARE_CHECKPOINT_SECONDS", "3600")
    with pytest.raises(Stop):
        _train(ds, "mlp", config, tmp_path / "a", stop_at=2)
    assert not (tmp_path / "a" / "checkpoint.json").exists()
    net, result, checkpoint = _train(ds, "mlp", config, tmp_path / "a")
    assert checkpoint.resumed_at is None
    _same((net, result), _train(ds, "mlp", config)[:2])
    # the loop decided to stop (early stopping): that epoch is checkpointed whatever the interval
    _, result, _ = _train(ds, "tcn", CASES["tcn, early stopping (patience 1)"][2], tmp_path / "b")
    assert result.metrics["stop_reason"] == "early_stopping"
    assert json.loads((tmp_path / "b" / "checkpoint.json").read_text())["epoch"] == result.metrics["epochs"]


@pytest.mark.parametrize("value", ["soon", "-1", "inf"])
def test_a_bad_checkpoint_interval_is_a_one_line_error(value, monkeypatch):
    from nncompare import UserError
    from nncompare.train.checkpoint import checkpoint_interval

    monkeypatch.setenv("NNCOMPARE_CHECKPOINT_SECONDS", value)
    with pytest.raises(UserError, match="NNCOMPARE_CHECKPOINT_SECONDS=.* is not a number of seconds; set it to 0"):
        checkpoint_interval()
    monkeypatch.setenv("NNCOMPARE_CHECKPOINT_SECONDS", "2.5")
    assert checkpoint_interval() == 2.5

"""Next-character text read as streams: contiguous streams chunk after chunk, recurrent state carried
across chunks (detached, reset each epoch), fixed-context models fed their context, and blocks
scored as one stream."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nncompare
from nncompare.data import load_dataset
from nncompare.data.text import WINDOW, bigram_bits_per_char, bigram_probabilities
from nncompare.models import create_model, model_names
from nncompare.train import TrainConfig
from nncompare.train import streams as streams_module
from nncompare.train.streams import chunks, evaluate_stream, flat, stream_layout

# long enough for 7 test windows, so a stream and separate windows score differently
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i % 13}. ({'x' * (i % 5)})\n" for i in range(260))


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "fox.txt"
    path.write_text(TEXT, encoding="utf-8")
    return f"text:{path}", load_dataset(f"text:{path}")


def decode(d, ids) -> str:
    return "".join(d.meta.class_names[i] for i in ids)


def test_streams_are_contiguous_pieces_read_chunk_after_chunk(text_data):
    _, d = text_data
    x, y = flat(d.train)
    assert TEXT.startswith(decode(d, x.tolist()))  # the windows end to end are the training block
    xs, ys = stream_layout(x, y, 3)
    length = len(x) // 3
    assert xs.shape == (3, length)
    pieces = [[], [], []]
    for xb, yb in chunks(xs, ys, 50):
        assert xb.shape[0] == 3 and xb.shape[1] <= 50
        for b in range(3):
            pieces[b].append((xb[b], yb[b]))
    for b in range(3):
        read = torch.cat([p[0] for p in pieces[b]])
        targets = torch.cat([p[1] for p in pieces[b]])
        assert decode(d, read.tolist()) == TEXT[b * length : (b + 1) * length]  # stream b, in order, nothing skipped
        assert decode(d, targets.tolist()) == TEXT[b * length + 1 : (b + 1) * length + 1]  # the next characters


def spy_on_steps(monkeypatch):
    """Record every stream_step call: training mode, the carry it got and the carry it returned."""
    calls = []
    real = streams_module.stream_step

    def spy(model, x, carry):
        out, new = real(model, x, carry)
        calls.append({"training": model.training, "x": x.clone(), "carry_in": carry, "carry_out": new})
        return out, new

    monkeypatch.setattr(streams_module, "stream_step", spy)
    return calls


def epochs_of(calls):
    """The training calls, grouped by epoch (validation calls come between epochs)."""
    groups, current = [], []
    for c in calls:
        if c["training"]:
            current.append(c)
        elif current:
            groups.append(current)
            current = []
    return groups


def test_recurrent_state_is_carried_detached_and_reset_every_epoch(text_data, monkeypatch):
    name, d = text_data
    calls = spy_on_steps(monkeypatch)
    nncompare.train(name, "lstm", config=TrainConfig(max_epochs=2, batch_size=4), hidden_size=8, num_layers=2)
    epochs = epochs_of(calls)
    steps = math.ceil((len(d.train) * WINDOW // 4) / WINDOW)
    assert [len(e) for e in epochs] == [steps, steps]
    for epoch in epochs:
        assert epoch[0]["carry_in"] is None  # a fresh state at every epoch start
        for before, after in zip(epoch, epoch[1:]):
            h_out, c_out = before["carry_out"]
            h_in, c_in = after["carry_in"]
            assert h_in.shape == (2, 4, 8)  # (layers, streams, units)
            assert torch.equal(h_in, h_out) and torch.equal(c_in, c_out)  # the state chunk k ended in
            assert h_out.requires_grad and not h_in.requires_grad and not c_in.requires_grad  # cut from the graph
    # validation reads one stream from a fresh state too
    first_val = next(i for i, c in enumerate(calls) if not c["training"])
    assert calls[first_val]["carry_in"] is None and calls[first_val]["x"].shape[0] == 1


def test_fixed_context_models_read_the_last_context_characters_again(text_data, monkeypatch):
    name, _ = text_data
    calls = spy_on_steps(monkeypatch)
    net, _ = nncompare.train(name, "cnn", config=TrainConfig(max_epochs=1, batch_size=4))
    context = net.context_length()
    (epoch,) = epochs_of(calls)
    assert epoch[0]["carry_in"] is None
    for before, after in zip(epoch, epoch[1:]):
        assert torch.equal(after["carry_in"], before["x"][:, -(context - 1) :])  # (streams, context-1) characters


@pytest.mark.parametrize("name,args", [(m, {}) for m in model_names()] + [("lstm", {"impl": "equations", "num_layers": 2}), ("gru", {"impl": "equations"})])
def test_a_block_read_as_one_stream_scores_what_reading_it_whole_does(text_data, name, args):
    _, d = text_data
    torch.manual_seed(0)
    model = create_model(name, d.meta, **args).eval()
    x, y = flat(d.val)
    loss, acc = evaluate_stream(model, x, y, chunk=50)  # in chunks, the carry between them
    with torch.no_grad():
        whole = model(x[None])[0]  # (N, V): the block read at once, every position from the start
    assert loss == pytest.approx(F.cross_entropy(whole, y).item(), rel=1e-5)
    assert acc == pytest.approx((whole.argmax(-1) == y).float().mean().item())


def test_the_same_seed_gives_the_same_numbers_and_the_test_block_is_one_stream(text_data):
    name, d = text_data
    runs = [nncompare.train(name, "gru", seed=1, config=TrainConfig(max_epochs=2)) for _ in range(2)]
    (net, a), (_, b) = runs
    assert a.history == [{**r, "seconds": a.history[i]["seconds"]} for i, r in enumerate(b.history)]
    assert a.metrics["test_loss"] == b.metrics["test_loss"]
    assert a.metrics["test_loss"] == pytest.approx(evaluate_stream(net, *flat(d.test))[0])
    assert a.metrics["score"] == pytest.approx(a.metrics["test_loss"] / math.log(2))
    assert a.metrics["test_loss"] != a.metrics["test_loss_windows"]  # windows read alone lose the context before them


def test_each_family_reports_its_context(text_data):
    name, d = text_data
    expected = {"mlp": 32, "cnn": 13, "tcn": 1 + 2 * 2 * (2**6 - 1), "rnn": "unbounded (TBPTT 128)", "lstm": "unbounded (TBPTT 128)", "gru": "unbounded (TBPTT 128)"}
    for m in model_names():
        _, result = nncompare.train(name, m, config=TrainConfig(max_epochs=1))
        assert result.metrics["context"] == expected[m]


def test_no_validation_is_refused_for_text_read_as_streams(text_data):
    name, _ = text_data
    with pytest.raises(nncompare.UserError, match="validation='none' is not available for next-character text"):
        nncompare.train(name, "rnn", config=TrainConfig(max_epochs=1, validation="none"))


def test_refit_on_text_trains_again_on_train_and_validation(text_data):
    name, _ = text_data
    _, result = nncompare.train(name, "rnn", config=TrainConfig(max_epochs=2, patience=5, refit=True))
    phases = [r.get("phase") for r in result.history]
    assert phases[:2] == [None, None] and phases[2:] == ["refit"] * result.metrics["best_epoch"]
    assert result.metrics["refit_epochs"] == result.metrics["best_epoch"]


def test_a_time_budget_can_end_an_epoch_part_way(text_data, monkeypatch):
    name, _ = text_data
    clock = iter(range(0, 10_000, 10))  # every reading of the clock is 10 s later
    monkeypatch.setattr(streams_module.time, "perf_counter", lambda: float(next(clock)))  # the time module, for every caller
    calls = spy_on_steps(monkeypatch)
    _, result = nncompare.train(name, "rnn", config=TrainConfig(max_epochs=50, max_seconds=25, batch_size=4))
    assert result.metrics["stop_reason"] == "max_seconds" and result.metrics["epochs"] == 1
    assert 1 <= len(epochs_of(calls)[0]) <= 3  # a few steps, not the epoch's 12


def test_bigram_baseline_smooths_towards_the_unigram_and_learns_pairs():
    v = 3
    train = np.array([0, 1, 2] * 200)  # 0 -> 1 -> 2 -> 0 ...
    p = bigram_probabilities(train, v, prior=1.0)
    assert np.allclose(p.sum(1), 1.0)
    assert p[0, 1] > 0.99 and 0 < p[0, 0] < 0.01  # a pair never seen still gets a little probability
    test = (np.array([0, 1, 2, 0]), np.array([1, 2, 0, 1]))
    bits, prior = bigram_bits_per_char(train, test, test, v)
    assert prior == 0.01 and bits == pytest.approx(-np.log2(bigram_probabilities(train, v, 0.01)[test]).mean())
    assert bits < 0.01  # the pattern is fully predictable from the previous character

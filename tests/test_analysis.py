"""Analyses on tiny models with known answers."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import image_meta, series_meta
from nncompare import UserError
from nncompare.data.order import permute_positions
from nncompare.analysis import (
    calibration,
    confusion,
    feature_correlations,
    first_layer_weights,
    flops_per_example,
    gradient_profile,
    has_dropout,
    least_confident,
    mc_dropout_proba,
    per_input_unit_max,
    predict_proba,
    predictive_entropy,
    span_of,
    text_features,
    theoretical_receptive_field,
    top_activating,
    training_step_flops,
    unit_activations,
)
from nncompare.data import DatasetMeta, load_dataset
from nncompare.models import create_model


class ReadsOnePosition(nn.Module):
    """Classifies a series from position `at` alone."""

    def __init__(self, at, channels=2, n_classes=3):
        super().__init__()
        self.at, self.head = at, nn.Linear(channels, n_classes)

    def forward(self, x, lengths=None):
        return self.head(x[:, self.at])


class LooksBack(nn.Module):
    """One label per position: output at t reads only x_{t-lag} (zeros before the start)."""

    def __init__(self, lag, channels=2, n_classes=3):
        super().__init__()
        self.lag, self.head = lag, nn.Linear(channels, n_classes)

    def forward(self, x, lengths=None):
        shifted = nn.functional.pad(x, (0, 0, self.lag, 0))[:, : x.shape[1]]  # (B, T, C) delayed by lag
        return self.head(shifted)


def test_a_model_reading_only_the_last_position_has_a_span_of_one():
    torch.manual_seed(0)
    x = torch.randn(50, 12, 2)
    profile = gradient_profile(ReadsOnePosition(-1), x, series_meta())
    assert profile.shape == (12,) and profile.sum() == pytest.approx(1.0)
    assert span_of(profile) == {"span": 1, "farthest": 1, "positions": 12}
    assert span_of(gradient_profile(ReadsOnePosition(0), x, series_meta()))["farthest"] == 12


def test_a_per_position_model_is_measured_by_lag():
    meta = DatasetMeta(name="toy", kind="series", task="per_step", input_shape=(20, 2), n_classes=3)
    profile = gradient_profile(LooksBack(3), torch.randn(40, 20, 2), meta)
    assert np.argmax(profile) == 3 and profile[3] == pytest.approx(1.0)
    assert span_of(profile, per_step=True) == {"span": 1, "farthest": 4, "positions": 20}


def test_span_counts_the_positions_holding_ninety_percent_of_the_mass():
    profile = np.array([0.5, 0.3, 0.15, 0.05])
    assert span_of(profile)["span"] == 3  # 0.5 + 0.3 = 0.8 < 0.9 <= 0.95
    assert span_of(profile)["farthest"] == 4  # position 0 (4 steps back) is above 1% of the peak
    assert span_of(np.array([0.0, 0.001, 0.999]))["farthest"] == 1  # 0.001 < 1% of the peak: only the last counts
    assert span_of(np.array([0.0, 0.02, 0.98]))["farthest"] == 2


def test_receptive_field_of_a_conv_stack_by_formula():
    stack = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Conv1d(4, 4, 3, dilation=2), nn.Conv1d(4, 4, 5, dilation=4))
    assert theoretical_receptive_field(stack) == 1 + 2 * 1 + 2 * 2 + 4 * 4
    assert theoretical_receptive_field(nn.Sequential(nn.Linear(3, 3))) is None
    meta = series_meta(length=64)
    cnn = create_model("cnn", meta, depth=4, kernel_size=5)
    assert theoretical_receptive_field(cnn) == cnn.receptive_field() == 1 + 4 * 4
    tcn = create_model("tcn", meta, levels=3, kernel_size=3)
    assert theoretical_receptive_field(tcn) == tcn.receptive_field() == 1 + 2 * 2 * (1 + 2 + 4)


def test_a_causal_tcn_sees_exactly_its_receptive_field():
    meta = DatasetMeta(name="toy", kind="series", task="per_step", input_shape=(40, 1), n_classes=2)
    torch.manual_seed(0)
    tcn = create_model("tcn", meta, levels=2, kernel_size=3)
    profile = gradient_profile(tcn, torch.randn(16, 40, 1), meta)
    assert np.nonzero(profile)[0].max() + 1 == tcn.receptive_field() == 13


def test_text_models_get_a_span_through_one_hot_inputs():
    meta = DatasetMeta(name="toy-text", kind="text", task="per_step", input_shape=(24,), n_classes=7)
    torch.manual_seed(0)
    ids = torch.randint(0, 7, (8, 24)).float()
    mlp = create_model("mlp", meta, window=5, width=16).eval()
    before = mlp(ids)
    profile = gradient_profile(mlp, ids, meta)
    assert np.nonzero(profile)[0].max() + 1 == 5  # the window
    assert mlp.kind == "text" and not mlp.training and torch.equal(mlp(ids), before)  # left as it was
    gru = create_model("gru", meta, hidden_size=8)
    assert gradient_profile(gru, ids, meta).shape == (24,)


def test_confusion_matrix_of_known_predictions():
    c = confusion(np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 0, 2]), 4)
    assert c["counts"].tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert c["normalised"][1].tolist() == pytest.approx([1 / 3, 2 / 3, 0, 0])
    assert c["normalised"][3].tolist() == [0, 0, 0, 0]


def test_expected_calibration_error_of_calibrated_and_overconfident_toys():
    probs = np.tile([0.75, 0.25], (1000, 1))
    y = np.array([0] * 750 + [1] * 250)
    cal = calibration(probs, y)
    assert cal["ece"] == pytest.approx(0.0, abs=1e-12)
    assert cal["count"].sum() == 1000 and cal["count"][7] == 1000  # 0.75 lies in (0.7, 0.8]
    over = calibration(np.tile([0.95, 0.05], (100, 1)), np.array([0, 1] * 50))
    assert over["ece"] == pytest.approx(0.45)
    assert over["accuracy"][9] == pytest.approx(0.5) and math.isnan(over["accuracy"][0])


def test_least_confident_and_entropy():
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    assert least_confident(probs, 2).tolist() == [1, 2]
    uniform = np.full((3, 5, 4), 0.25)
    assert predictive_entropy(uniform) == pytest.approx(np.full(5, math.log(4)))


def test_mc_dropout_is_reproducible_and_varies_only_with_dropout():
    meta = series_meta()
    torch.manual_seed(0)
    mlp = create_model("mlp", meta, width=32, dropout=0.5).eval()
    x = torch.randn(10, 12, 2)
    a, b = mc_dropout_proba(mlp, x, passes=5, seed=1), mc_dropout_proba(mlp, x, passes=5, seed=1)
    assert a.shape == (5, 10, 3) and np.array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # masks differ between passes
    assert not mlp.training
    assert np.allclose(predict_proba(mlp, x), predict_proba(mlp, x))  # eval mode: deterministic
    plain = create_model("cnn", meta)
    assert not has_dropout(plain)
    with pytest.raises(ValueError):
        mc_dropout_proba(plain, x)


def test_flops_of_a_linear_model_and_of_a_recurrent_one():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(24, 5))
    assert flops_per_example(lin, torch.randn(3, 12, 2)) == 2 * 24 * 5
    meta = series_meta(length=10, channels=1, n_classes=2)
    gru = create_model("gru", meta, hidden_size=4)
    # per step: input (1 -> 3*4) and recurrent (4 -> 3*4) multiplies; then the head (4 -> 2)
    assert flops_per_example(gru, torch.randn(2, 10, 1)) == 10 * 2 * (1 * 12 + 4 * 12) + 2 * 4 * 2
    assert gru.recurrent.impl == "auto"  # switched back
    # the LSTM counted on its equation-written path (LSTMSteps): input (1 -> 4*4) and recurrent (4 -> 4*4) multiplies per step
    lstm = create_model("lstm", meta, hidden_size=4, num_layers=2)
    assert flops_per_example(lstm, torch.randn(2, 10, 1)) == 10 * 2 * (1 * 16 + 4 * 16) + 10 * 2 * (4 * 16 + 4 * 16) + 2 * 4 * 2


def test_flops_of_a_training_step():
    x, y = torch.randn(3, 12, 2), torch.tensor([0, 4, 1])
    lin = nn.Sequential(nn.Flatten(), nn.Linear(24, 5))
    # forward 2*24*5 per example, backward: the weights' gradient only (the input needs none)
    assert training_step_flops(lin, x, y) == 3 * (2 * 24 * 5 + 2 * 24 * 5)
    two = nn.Sequential(nn.Flatten(), nn.Linear(24, 7), nn.ReLU(), nn.Linear(7, 5))
    # the second layer's backward also gives its input's gradient: 3x its forward
    assert training_step_flops(two, x, y) == 3 * (2 * 2 * 24 * 7 + 3 * 2 * 7 * 5)
    assert all(p.grad is None for p in two.parameters()) and two.training
    meta = series_meta(length=10, channels=1, n_classes=2)
    gru = create_model("gru", meta, hidden_size=4).eval()
    # torch's fused GRU (the default): forward 2 x (10 steps x (1 -> 12 and 4 -> 12) + the head 4 -> 2) = 2432;
    # backward: the input multiply's weights 480, W_h's gradient over all steps 10 x 192, W_h^T dg_{t+1}
    # at every step but the last 9 x 192 (none into the zero initial state), the head's weights and input 2 x 32
    assert training_step_flops(gru, torch.randn(2, 10, 1), torch.tensor([0, 1])) == 2432 + 480 + 10 * 192 + 9 * 192 + 64
    assert gru.recurrent.impl == "auto" and not gru.training
    fused = create_model("gru", meta, hidden_size=4, impl="equations").eval()  # the autograd loop: the same count
    assert training_step_flops(fused, torch.randn(2, 10, 1), torch.tensor([0, 1])) == 2432 + 480 + 10 * 192 + 9 * 192 + 64
    # the LSTM: forward 640 + 10 x 256 + 32; backward: the input multiply's weights 640, W_h^T da_{t+1} at
    # every step but the last 9 x 256 (none into the zero initial state), dW_h over all steps 10 x 256, the head 64
    lstm = create_model("lstm", meta, hidden_size=4)
    assert training_step_flops(lstm, torch.randn(2, 10, 1), torch.tensor([0, 1])) == (640 + 2560 + 32) + (640 + 9 * 256 + 2560 + 64)


def test_permutation_of_positions_is_fixed_and_the_same_in_every_channel():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    p = permute_positions(x, "image", seed=0)
    assert torch.equal(p, permute_positions(x, "image", seed=0)) and not torch.equal(p, x)
    assert torch.equal(p.sort(-1).values.flatten(2).sort(-1).values, x.flatten(2))
    assert torch.equal(p[:, 1] - p[:, 0], x[:, 1] - x[:, 0])  # the same shuffle in every channel
    d = load_dataset("digits", permute=3)
    plain = load_dataset("digits")
    assert torch.equal(d.test.y, plain.test.y) and not torch.equal(d.test.x, plain.test.x)
    with pytest.raises(UserError, match="permute"):
        load_dataset("digits", permute=-1)
    with pytest.raises(UserError, match="labels every position"):
        load_dataset("copy:10", permute=0)


def test_neuron_views_have_the_model_shapes():
    meta = image_meta(channels=1, height=8, width=8, n_classes=10)
    x = torch.randn(6, 1, 8, 8)
    cnn = create_model("cnn", meta, channels=4)
    acts = unit_activations(cnn, x)
    assert acts.shape == (6, 4, 8, 8) and (acts >= 0).all()  # after the ReLU
    assert first_layer_weights(cnn, meta).shape == (4, 1, 3, 3)
    mlp = create_model("mlp", meta, width=16)
    assert unit_activations(mlp, x).shape == (6, 16)
    assert first_layer_weights(mlp, meta).shape == (16, 1, 8, 8)
    gru = create_model("gru", meta, hidden_size=5)
    assert unit_activations(gru, x).shape == (6, 8, 5) and first_layer_weights(gru, meta) is None
    per_input = per_input_unit_max(acts, "channels_first")
    assert per_input.shape == (6, 4)
    top = top_activating(per_input, k=3)
    assert top.shape == (4, 3) and all(per_input[top[u, 0], u] == per_input[:, u].max() for u in range(4))


def test_a_unit_tracking_quotes_is_found():
    text = 'a = "xy z" + b\n    c = "q"\n'
    f = text_features(text)
    assert f["inside quotes"].tolist()[4:10] == [1, 1, 1, 1, 1, 0]  # from the opening quote to the closing one
    assert f["indentation"][text.index("c")] == 4
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(len(text), 6))
    hidden[:, 4] = f["inside quotes"] * 2 + 0.01 * rng.normal(size=len(text))
    best = feature_correlations(hidden, {"inside quotes": f["inside quotes"]})
    assert best[0]["unit"] == 4 and best[0]["r"] > 0.99

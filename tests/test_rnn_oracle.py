"""Oracle tests (micrograd style): the cells written from their equations compute what torch's fused
modules compute, outputs and gradients, with copied weights; and the RNN matches a plain-NumPy pass."""

import numpy as np
import pytest
import torch

from nncompare.models import create_model
from nncompare.models import native, rnn
from nncompare.models.rnn import RecurrentLayers

from conftest import image_meta, series_meta

TORCH_MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_equations_match_torch_fused_outputs_and_gradients(cell, num_layers):
    torch.manual_seed(0)
    dtype = torch.float64  # compare the algebra, not float32 rounding
    ours = RecurrentLayers(cell, input_size=3, hidden_size=5, num_layers=num_layers, impl="equations").to(dtype)
    reference = TORCH_MODULES[cell](3, 5, num_layers, batch_first=True).to(dtype)
    with torch.no_grad():  # copy torch's (independently initialised) weights into ours
        for name, p in reference.named_parameters():
            getattr(ours.fused, name).copy_(p)
    x = torch.randn(4, 11, 3, dtype=dtype)
    x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)

    out_ours = ours(x_ours)  # (B, T, H) from the equations
    out_ref = reference(x_ref)[0]
    torch.testing.assert_close(out_ours, out_ref, atol=1e-5, rtol=0)

    weights = torch.randn_like(out_ref)  # a loss that touches every output
    (out_ours * weights).sum().backward()
    (out_ref * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=0)
    for name, p in reference.named_parameters():
        torch.testing.assert_close(getattr(ours.fused, name).grad, p.grad, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("meta", [series_meta(length=9, channels=2), image_meta(channels=1, height=7, width=4)], ids=["series", "image"])
def test_model_equation_path_equals_fused_path_in_float32(cell, meta):
    torch.manual_seed(3)
    fused = create_model(cell, meta, hidden_size=8, num_layers=2)
    equations = create_model(cell, meta, hidden_size=8, num_layers=2, impl="equations")
    equations.load_state_dict(fused.state_dict())  # the same parameter names: a straight copy
    x = torch.randn(6, *meta.input_shape)
    out_f, out_e = fused(x), equations(x)
    torch.testing.assert_close(out_e, out_f, atol=1e-5, rtol=0)
    out_f.square().sum().backward()
    out_e.square().sum().backward()
    for (name, pf), (_, pe) in zip(fused.named_parameters(), equations.named_parameters()):
        torch.testing.assert_close(pe.grad, pf.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_rnn_matches_plain_numpy_forward_pass():
    """h_t = tanh(W_hh h_{t-1} + W_xh x_t), y_t = W_hy h_t, step by step in NumPy (biases zero)."""
    meta = series_meta(length=10, channels=3, n_classes=4)
    torch.manual_seed(7)
    model = create_model("rnn", meta, hidden_size=6).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.zero_()
    rnn = model.recurrent.fused
    W_xh = rnn.weight_ih_l0.detach().numpy()
    W_hh = rnn.weight_hh_l0.detach().numpy()
    W_hy = model.head.weight.detach().numpy()

    x = np.random.default_rng(0).normal(size=(2, 10, 3))
    h = np.zeros((2, 6))
    ys = []
    for t in range(10):
        h = np.tanh(h @ W_hh.T + x[:, t] @ W_xh.T)
        ys.append(h @ W_hy.T)
    ys = np.stack(ys, 1)  # (B, T, n_classes)

    xt = torch.from_numpy(x)
    with torch.no_grad():
        per_step = model.head(model.hidden_states(xt)).numpy()  # y_t for every t
        last = model(xt).numpy()  # the classifier reads y_T
    np.testing.assert_allclose(per_step, ys, atol=1e-10)
    np.testing.assert_allclose(last, ys[:, -1], atol=1e-10)


# -- the LSTM's hand-written backward through time (LSTMSteps) -------------------------------------------


@pytest.mark.parametrize("steps", [1, 4])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "recurrent-dropout-mask"])
def test_lstm_steps_backward_passes_gradcheck(masked, steps):
    """The hand-derived backward of LSTMSteps against finite differences, in float64, for every input:
    the input projection, W_hh and an initial state (h_0, c_0) that itself requires grad (truncated BPTT)."""
    gen = torch.Generator().manual_seed(0)
    b, h = 2, 3
    args = [torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_() for shape in ((4 * h, steps, b), (4 * h, h), (b, h), (b, h))]
    mask = torch.bernoulli(torch.full((b, h), 0.5, dtype=torch.float64), generator=gen) / 0.5 if masked else None
    assert torch.autograd.gradcheck(lambda *a: rnn.LSTMSteps.apply(*a, mask), args)


@pytest.fixture(params=["compiled", "python"])
def lstm_loops(request, monkeypatch):
    """LSTMSteps' loops compiled (models/native.py, where this machine has a C compiler) and in Python."""
    if request.param == "python":
        monkeypatch.setattr(native, "_state", {"lib": None, "why": "off in this test", "path": None})
    elif native.lstm_library() is None:
        pytest.skip(native.native_status())
    return request.param


def _lstm_pair(input_size, num_layers, seed=0, **kwargs):
    torch.manual_seed(seed)
    fused = RecurrentLayers("lstm", input_size, hidden_size=5, num_layers=num_layers, **kwargs).train()
    equations = RecurrentLayers("lstm", input_size, hidden_size=5, num_layers=num_layers, impl="equations", **kwargs).train()
    equations.load_state_dict(fused.state_dict())
    return fused, equations


def _outputs_and_gradients(layers, x, state, seed=1):
    """Top-layer outputs, final state, and the gradients of every parameter and of the initial state,
    for a loss that reads every output and the final (h, c)."""
    layers.zero_grad()
    state = tuple(s.detach().clone().requires_grad_() for s in state)
    torch.manual_seed(seed)  # the same recurrent-dropout masks on every path
    out, (h, c) = layers.run(x, state)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    ((out * weights).sum() + (h * c).sum()).backward()
    grads = {name: p.grad.clone() for name, p in layers.named_parameters()}
    return out, h, c, grads, state[0].grad, state[1].grad


@pytest.mark.parametrize("input_size", [1, 3])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_steps_match_the_fused_lstm_and_the_autograd_loop_in_training(monkeypatch, lstm_loops, num_layers, input_size):
    """impl="equations" (LSTMSteps) computes torch's fused LSTM and the autograd loop it replaced: outputs,
    final state, every parameter's gradient and the initial state's, in float32, in training mode."""
    fused, equations = _lstm_pair(input_size, num_layers)
    x = torch.randn(4, 9, input_size)
    state = (torch.randn(num_layers, 4, 5), torch.randn(num_layers, 4, 5))
    reference = _outputs_and_gradients(fused, x, state)
    ours = _outputs_and_gradients(equations, x, state)
    with torch.no_grad():  # nothing to differentiate: the forward alone (no Function), the same numbers
        assert torch.equal(equations.run(x, state)[0], ours[0])
    monkeypatch.setattr(rnn, "lstm_layer_equations", rnn.lstm_layer_autograd)
    loop = _outputs_and_gradients(equations, x, state)
    for other in (reference, loop):
        for a, b in zip(ours[:3] + ours[4:], other[:3] + other[4:]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        for name in ours[3]:
            torch.testing.assert_close(ours[3][name], other[3][name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_steps_with_recurrent_dropout_match_the_autograd_loop_and_repeat_exactly(monkeypatch, lstm_loops, num_layers):
    """With a recurrent-dropout mask on h_{t-1} (no fused counterpart): LSTMSteps against the autograd
    loop with the same masks; and the same seed gives the same numbers, bit for bit."""
    _, equations = _lstm_pair(3, num_layers, recurrent_dropout=0.4)
    x = torch.randn(3, 7, 3)
    state = (torch.randn(num_layers, 3, 5), torch.randn(num_layers, 3, 5))
    ours = _outputs_and_gradients(equations, x, state)
    again = _outputs_and_gradients(equations, x, state)
    other_masks = _outputs_and_gradients(equations, x, state, seed=5)
    assert not torch.allclose(ours[0], other_masks[0])  # the mask is in use
    for a, b in zip(ours[:3] + ours[4:], again[:3] + again[4:]):
        assert torch.equal(a, b)
    assert all(torch.equal(ours[3][name], again[3][name]) for name in ours[3])
    monkeypatch.setattr(rnn, "lstm_layer_equations", rnn.lstm_layer_autograd)
    loop = _outputs_and_gradients(equations, x, state)
    for a, b in zip(ours[:3] + ours[4:], loop[:3] + loop[4:]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for name in ours[3]:
        torch.testing.assert_close(ours[3][name], loop[3][name], atol=1e-5, rtol=1e-5, msg=name)


# -- the GRU's hand-written backward through time (GRUSteps) and impl="auto" -------------------------------


@pytest.mark.parametrize("steps", [1, 4])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "recurrent-dropout-mask"])
def test_gru_steps_backward_passes_gradcheck(masked, steps):
    """The hand-derived backward of GRUSteps against finite differences, in float64, for every input:
    the input projection, W_hh, b_hn and an initial state that itself requires grad."""
    gen = torch.Generator().manual_seed(0)
    b, h = 2, 3
    args = [torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_() for shape in ((steps, 3 * h, b), (3 * h, h), (h,), (b, h))]
    mask = torch.bernoulli(torch.full((b, h), 0.5, dtype=torch.float64), generator=gen) / 0.5 if masked else None
    assert torch.autograd.gradcheck(lambda *a: rnn.GRUSteps.apply(*a, mask), args)


def _gru_outputs_and_gradients(layers, x, h0, seed=1):
    """Top-layer outputs, final state, every parameter's gradient and the initial state's, for a loss
    that reads every output and the final state."""
    layers.zero_grad()
    h0 = h0.detach().clone().requires_grad_()
    torch.manual_seed(seed)  # the same recurrent-dropout masks on every path
    out, h = layers.run(x, h0)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    ((out * weights).sum() + h.square().sum()).backward()
    return out, h, h0.grad, {name: p.grad.clone() for name, p in layers.named_parameters()}


def _assert_same(ours, other, exact=False):
    for a, b in zip(ours[:3], other[:3]):
        assert torch.equal(a, b) if exact else torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    for name in ours[3]:
        if exact:
            assert torch.equal(ours[3][name], other[3][name]), name
        else:
            torch.testing.assert_close(ours[3][name], other[3][name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("input_size", [1, 3])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_gru_steps_match_the_fused_gru_and_the_autograd_loop_in_training(monkeypatch, num_layers, input_size):
    """impl="equations" (GRUSteps) computes torch's nn.GRU and the autograd loop: outputs, final state,
    every parameter's gradient (b_hn inside r_t's product included) and the initial state's, in float32."""
    torch.manual_seed(0)
    fused = RecurrentLayers("gru", input_size, hidden_size=5, num_layers=num_layers, impl="fused").train()
    equations = RecurrentLayers("gru", input_size, hidden_size=5, num_layers=num_layers, impl="equations").train()
    equations.load_state_dict(fused.state_dict())
    x, h0 = torch.randn(4, 9, input_size), torch.randn(num_layers, 4, 5)
    ours = _gru_outputs_and_gradients(equations, x, h0)
    with torch.no_grad():  # nothing to differentiate: the forward alone (no Function), the same numbers
        assert torch.equal(equations.run(x, h0)[0], ours[0])
    _assert_same(ours, _gru_outputs_and_gradients(fused, x, h0))
    monkeypatch.setattr(rnn, "gru_layer_equations", rnn.gru_layer_autograd)
    _assert_same(ours, _gru_outputs_and_gradients(equations, x, h0))


def test_gru_steps_with_recurrent_dropout_match_the_autograd_loop_and_repeat_exactly(monkeypatch):
    """With a recurrent-dropout mask on h_{t-1}: GRUSteps against the autograd loop with the same masks,
    and the same seed gives the same numbers bit for bit."""
    torch.manual_seed(0)
    equations = RecurrentLayers("gru", 3, hidden_size=5, num_layers=2, recurrent_dropout=0.4).train()
    assert equations.impl == "equations"
    x, h0 = torch.randn(3, 7, 3), torch.randn(2, 3, 5)
    ours = _gru_outputs_and_gradients(equations, x, h0)
    _assert_same(ours, _gru_outputs_and_gradients(equations, x, h0), exact=True)
    assert not torch.allclose(ours[0], _gru_outputs_and_gradients(equations, x, h0, seed=5)[0])  # the mask is in use
    monkeypatch.setattr(rnn, "gru_layer_equations", rnn.gru_layer_autograd)
    _assert_same(ours, _gru_outputs_and_gradients(equations, x, h0))


def test_auto_runs_a_narrow_gru_on_the_cpu_through_gru_steps_and_everything_else_fused(monkeypatch):
    meta = series_meta(length=6, channels=2)
    x = torch.randn(3, 6, 2)
    calls = []
    monkeypatch.setattr(rnn.GRUSteps, "apply", lambda *a: calls.append("steps") or rnn._gru_steps_forward(*a)[0])
    narrow, wide = create_model("gru", meta, hidden_size=rnn.GRU_STEPS_MAX_HIDDEN), create_model("gru", meta, hidden_size=rnn.GRU_STEPS_MAX_HIDDEN + 1)
    assert narrow.recurrent.impl == "auto" and narrow.recurrent.uses_fused(x) is False
    assert wide.recurrent.uses_fused(x) is True
    assert create_model("lstm", meta).recurrent.uses_fused(x) and create_model("rnn", meta).recurrent.uses_fused(x)
    narrow(x).sum().backward()
    assert calls == ["steps"]
    wide(x).sum().backward()
    assert calls == ["steps"]  # nn.GRU, not GRUSteps
    fused = create_model("gru", meta, hidden_size=rnn.GRU_STEPS_MAX_HIDDEN, impl="fused")
    fused.load_state_dict(narrow.state_dict())
    torch.testing.assert_close(narrow(x), fused(x), atol=1e-5, rtol=0)
    traced = torch.jit.trace(narrow.eval(), x)  # tracing (as an export) records torch's fused GRU
    assert "aten::gru" in str(traced.inlined_graph)
    torch.testing.assert_close(traced(x), fused.eval()(x), atol=1e-5, rtol=0)

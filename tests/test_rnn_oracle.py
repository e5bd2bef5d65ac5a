"""Oracle tests (micrograd style): the cells written from their equations (impl="equations", plain
autograd loops) compute what torch's fused modules compute, outputs and gradients, with copied weights;
and both compute what a plain NumPy pass of the same equations computes. torch's fused module is the
default at every size; the equations run where it cannot express the cell (layer norm, recurrent dropout)."""

import numpy as np
import pytest
import torch

from nncompare.models import create_model
from nncompare.models.rnn import RecurrentLayers

from conftest import image_meta, series_meta

CELLS = ["rnn", "lstm", "gru"]
TORCH_MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
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


@pytest.mark.parametrize("cell", CELLS)
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


def _state(cell, num_layers, batch, hidden, gen):
    """A torch-layout initial state: h (L, B, H), for the LSTM the pair (h, c)."""
    h = torch.randn(num_layers, batch, hidden, generator=gen)
    return (h, torch.randn(num_layers, batch, hidden, generator=gen)) if cell == "lstm" else h


def _run_from_state(layers, x, state):
    """Outputs, final state, every parameter's gradient and the initial state's, for a loss that reads
    every output and the final state."""
    layers.zero_grad()
    state = tuple(s.detach().clone().requires_grad_() for s in state) if isinstance(state, tuple) else state.detach().clone().requires_grad_()
    out, final = layers.run(x, state)
    finals = final if isinstance(final, tuple) else (final,)
    gen = torch.Generator().manual_seed(2)
    loss = (out * torch.randn(out.shape, generator=gen)).sum() + sum((f * torch.randn(f.shape, generator=gen)).sum() for f in finals)
    loss.backward()
    starts = state if isinstance(state, tuple) else (state,)
    return [out, *finals, *(s.grad for s in starts)], {name: p.grad.clone() for name, p in layers.named_parameters()}


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_equations_continue_a_given_state_as_the_fused_module_does(cell, num_layers):
    """From an initial state that itself requires grad (truncated BPTT carries one from chunk to chunk):
    outputs, final state, every parameter's gradient and the initial state's, in float32."""
    torch.manual_seed(0)
    fused = RecurrentLayers(cell, 3, hidden_size=5, num_layers=num_layers).train()
    equations = RecurrentLayers(cell, 3, hidden_size=5, num_layers=num_layers, impl="equations").train()
    equations.load_state_dict(fused.state_dict())
    gen = torch.Generator().manual_seed(1)
    x, state = torch.randn(4, 9, 3, generator=gen), _state(cell, num_layers, 4, 5, gen)
    (ours, our_grads), (theirs, their_grads) = _run_from_state(equations, x, state), _run_from_state(fused, x, state)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for name in our_grads:
        torch.testing.assert_close(our_grads[name], their_grads[name], atol=1e-5, rtol=1e-5, msg=name)


# -- NumPy: the equations once more, with no torch in the arithmetic ------------------------------------


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def numpy_layer(cell, x, W_ih, W_hh, b_ih, b_hh, mask=None):
    """One recurrent layer over x (B, T, I) from a zero state, gates in torch's order; `mask` (B, H)
    multiplies h_{t-1} where it enters W_hh (recurrent dropout). Returns h_1..h_T (B, T, H)."""
    batch, hidden = x.shape[0], W_hh.shape[1]
    h, c, hs = np.zeros((batch, hidden)), np.zeros((batch, hidden)), []
    for t in range(x.shape[1]):
        a_x = x[:, t] @ W_ih.T + b_ih
        a_h = (h if mask is None else h * mask) @ W_hh.T + b_hh
        if cell == "rnn":
            h = np.tanh(a_x + a_h)  # h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)
        elif cell == "lstm":
            i, f, g, o = np.split(a_x + a_h, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)  # c_t = f_t c_{t-1} + i_t tanh(W_xc x_t + W_hc h_{t-1} + b_c)
            h = _sigmoid(o) * np.tanh(c)  # h_t = o_t tanh(c_t)
        else:
            (x_r, x_z, x_n), (h_r, h_z, h_n) = np.split(a_x, 3, axis=1), np.split(a_h, 3, axis=1)
            r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
            n = np.tanh(x_n + r * h_n)  # n_t = tanh(W_xn x_t + b_in + r_t (W_hn h_{t-1} + b_hn))
            h = (1 - z) * n + z * h  # h_t = (1 - z_t) n_t + z_t h_{t-1}
        hs.append(h)
    return np.stack(hs, 1)


def numpy_net(model, x, masks=None):
    """Every layer of `model.recurrent` in NumPy, then y_t = W_hy h_t: (per-step outputs, top hidden states)."""
    layers = model.recurrent
    h = x
    for k in range(layers.num_layers):
        w = [getattr(layers.fused, f"{name}_l{k}").detach().numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h = numpy_layer(layers.cell, h, *w, mask=None if masks is None else masks[k])
    return h @ model.head.weight.detach().numpy().T + model.head.bias.detach().numpy(), h


@pytest.mark.parametrize("impl", ["auto", "equations"])
@pytest.mark.parametrize("cell", CELLS)
def test_both_paths_match_a_plain_numpy_pass(cell, impl):
    meta = series_meta(length=10, channels=3, n_classes=4)
    torch.manual_seed(7)
    model = create_model(cell, meta, hidden_size=6, num_layers=2, impl=impl).double().eval()
    x = np.random.default_rng(0).normal(size=(2, 10, 3))
    ys, _ = numpy_net(model, x)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        per_step = model.head(model.hidden_states(xt)).numpy()  # y_t for every t
        last = model(xt).numpy()  # the classifier reads y_T
    np.testing.assert_allclose(per_step, ys, atol=1e-10)
    np.testing.assert_allclose(last, ys[:, -1], atol=1e-10)


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_dropout_matches_numpy_with_the_same_masks_and_repeats_exactly(cell, monkeypatch):
    """One mask per sequence and layer on h_{t-1} (no fused counterpart): the masks the model drew, put
    into the NumPy pass, give its hidden states; the same seed gives the same numbers bit for bit."""
    meta = series_meta(length=7, channels=3)
    torch.manual_seed(0)
    model = create_model(cell, meta, hidden_size=5, num_layers=2, recurrent_dropout=0.4).double().train()
    assert model.recurrent.impl == "equations" and not model.recurrent.uses_fused()
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 7, 3)))
    masks, bernoulli = [], torch.bernoulli
    monkeypatch.setattr(torch, "bernoulli", lambda *a, **k: masks.append(bernoulli(*a, **k)) or masks[-1])
    torch.manual_seed(5)
    h = model.recurrent(x)
    assert len(masks) == 2 and 0 < float(masks[0].mean()) < 1  # one mask per layer, some units dropped
    _, expected = numpy_net(model, x.numpy(), [m.numpy() / 0.6 for m in masks])
    np.testing.assert_allclose(h.detach().numpy(), expected, atol=1e-10)
    torch.manual_seed(5)
    assert torch.equal(model.recurrent(x), h)
    torch.manual_seed(6)
    assert not torch.allclose(model.recurrent(x), h)  # another seed, other masks


# -- which path runs: the model's hyperparameters decide, never the device or the size --------------------


def _runs_fused(model, x) -> bool:
    """Whether a forward pass of `model` on `x` calls torch's fused module (the equations only read its weights)."""
    calls = []
    hook = model.recurrent.fused.register_forward_hook(lambda *_: calls.append(1))
    try:
        model(x).sum().backward()
    finally:
        hook.remove()
    return bool(calls)


@pytest.mark.parametrize("cell", CELLS)
def test_the_default_is_torchs_fused_module_at_every_size(cell):
    meta = series_meta(length=6, channels=2)
    x = torch.randn(3, 6, 2)
    for hidden in (4, 128, 300):
        model = create_model(cell, meta, hidden_size=hidden)
        assert model.recurrent.impl == "auto" and model.recurrent.uses_fused() and _runs_fused(model, x)
        assert _runs_fused(create_model(cell, meta, hidden_size=hidden, impl="fused"), x)
    for variant in ({"norm": "layer"}, {"recurrent_dropout": 0.1}, {"impl": "equations"}):  # the first two: cells the fused module cannot express
        model = create_model(cell, meta, hidden_size=4, **variant)
        assert model.recurrent.impl == "equations" and not model.recurrent.uses_fused() and not _runs_fused(model, x)

"""Recurrent networks: vanilla RNN, LSTM and GRU, weights tied across time steps.

Each cell is written twice: from its equations (below, one line per equation, the equation quoted),
and as torch's fused `nn.RNN` / `nn.LSTM` / `nn.GRU`, the fast path. Both read the *same* parameters
(torch's layout: `weight_ih_l{k}` stacks the input weights of every gate, `weight_hh_l{k}` the recurrent
ones), so `impl="equations"` and `impl="fused"` compute the same function; tests hold them to 1e-5.
The default, `impl="auto"`, takes the fused module but for a GRU on a CPU, where the equation-written
`GRUSteps` is the faster (GRU_STEPS_MAX_HIDDEN). The LSTM's equations run in `LSTMSteps`, whose loops
through time are compiled from C on first use where the machine has a compiler (native.py, lstm_loop.c).

Series are read step by step (B, L, C); images row by row (B, H, C*W). The classifier reads the last
hidden state (of the last real step, for padded series): everything the model knows about the
sequence has to pass through it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ..errors import UserError
from . import native, register_model
from .layers import check_positive_int, last_step, sequence_shape, sequence_view, symbols

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
IMPLS = ("auto", "fused", "equations")
# impl="auto" runs a GRU up to this width on a CPU through `GRUSteps`, wider ones through torch's nn.GRU:
# per training step on 1 thread GRUSteps took 0.24-0.76x nn.GRU's time with 6 and 64 units and 0.81-1.04x
# with 256 (benchmarks/recurrent.py, batch 32); at batch 128, 1.19x with 256 units over 200 steps
GRU_STEPS_MAX_HIDDEN = 128
NORMS = ("none", "layer")


class GateNorm(nn.Module):
    """Layer normalisation of each gate's pre-activation separately: (..., G*H) -> (..., G*H), with a
    gain and a bias per gate and unit (Ba, Kiros & Hinton 2016, "Layer Normalization", Section 6.3)."""

    def __init__(self, gates: int, hidden_size: int):
        super().__init__()
        self.gates, self.hidden_size = gates, hidden_size
        self.weight = nn.Parameter(torch.ones(gates, hidden_size))
        self.bias = nn.Parameter(torch.zeros(gates, hidden_size))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        shaped = a.unflatten(-1, (self.gates, self.hidden_size))  # (..., G, H)
        normed = nn.functional.layer_norm(shaped, (self.hidden_size,))  # zero mean, unit variance per gate
        return (normed * self.weight + self.bias).flatten(-2)


class LayerNorms(nn.Module):
    """The normalisations of one layer-normalised recurrent layer: of the input projection W_x x_t, of
    the recurrent projection W_h h_{t-1}, and (LSTM) of the cell state before its tanh.

    A layer reading one input feature (a univariate series) leaves its input projection as it is: the
    projection of a single number x_t is x_t w, and normalising it keeps only the sign of x_t. Measured
    on MNIST-1D (LSTM, 12 epochs, seed 0): 17.2% test accuracy with that norm, 47.9% without it."""

    def __init__(self, cell: str, hidden_size: int, input_size: int):
        super().__init__()
        self.x = GateNorm(GATES[cell], hidden_size) if input_size > 1 else None
        self.h = GateNorm(GATES[cell], hidden_size)
        self.c = nn.LayerNorm(hidden_size) if cell == "lstm" else None


def _project(x, w, b, norm):
    """W x (+ LN) + b; without a norm exactly x @ W^T + b."""
    if norm is None:
        return x @ w.T + b
    return norm(x @ w.T) + b


def _input_projection(x, w_ih, b_ih, b_hh, norm):
    """W_x x_t + b for every step in one multiply: (B, T, I) -> (B, T, G*H).

    Given `b_hh` (a layer without norms), both biases are added here once, so each step is a single
    multiply-add; a layer-normalised one adds its recurrent bias after the recurrent norm, in the loop."""
    if norm is None and b_hh is not None:
        return torch.addmm(b_ih + b_hh, x.flatten(0, 1), w_ih.T).unflatten(0, x.shape[:2])
    return _project(x, w_ih, b_ih, norm)


def _recurrent_step(x_proj_t, h, w_hh_t, b_hh, norm):
    """W_x x_t + W_h h_{t-1} + b for one step: (B, G*H). Without a norm one fused multiply-add (both
    biases are already in x_proj_t); with a norm LN(W_h h_{t-1}) + b_hh is added."""
    if norm is None:
        return torch.addmm(x_proj_t, h, w_hh_t)
    return x_proj_t + norm(h @ w_hh_t) + b_hh


# The loops below are written for few operations per step: on a CPU a small recurrent layer's time
# goes to the per-operation overhead of every step, forward and backward (benchmarks/recurrent.py).


def rnn_layer_equations(x, h, w_ih, w_hh, b_ih, b_hh, ln: LayerNorms | None = None, h_mask=None):
    """Elman RNN over (B, T, I) from h_0 (B, H); returns all hidden states (B, T, H) and h_T.
    With `ln`, each projection is layer-normalised before the biases: tanh(LN(W_xh x_t) + LN(W_hh h_{t-1}) + b)."""
    x_proj = _input_projection(x, w_ih, b_ih, b_hh if ln is None else None, ln and ln.x)  # W_xh x_t (+ b) for every t in one multiply: (B, T, H)
    w_hh_t, norm_h = w_hh.T, ln and ln.h
    outputs = []
    for x_t in x_proj.unbind(1):  # unbind, not x_proj[:, t]: a slice's backward writes a zero tensor of all T steps, every step
        h_in = h if h_mask is None else h * h_mask  # recurrent dropout: one mask for the whole sequence
        h = torch.tanh(_recurrent_step(x_t, h_in, w_hh_t, b_hh, norm_h))  # h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)
        outputs.append(h)
    return torch.stack(outputs, 1), h


def lstm_layer_equations(x, state, w_ih, w_hh, b_ih, b_hh, ln: LayerNorms | None = None, h_mask=None):
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate) over (B, T, I) from state (h_0, c_0), each (B, H);
    returns all hidden states (B, T, H) and (h_T, c_T). Without a layer norm the steps run in `LSTMSteps`,
    a hand-written forward and backward through time; with one (or under tracing) in the autograd loop
    `lstm_layer_autograd`. Both compute the same function.

    `LSTMSteps` takes and returns the sequence feature-major, (features, T, B): the input projection of
    every step is one multiply (its gradients two) on a layer's input as it is, and the hidden states
    returned are a (B, T, H) view of an (H, T, B) tensor, which the next layer reads without a copy.
    Its loops run compiled from C where the machine has a compiler (native.py), else in Python. Measured
    per training step against torch's fused LSTM (oneDNN on CPU; benchmarks/recurrent.py, 1 thread, batch
    32): the autograd loop 12-15x at 6 units and 1000 steps (an earlier session); with denormals flushed on
    both paths, `LSTMSteps` in Python 1.0-5.0x over 6, 64 and 256 units and 40, 200 and 1000 steps (a small
    layer's time is the cost of calling some twelve operations a step from Python, 3-5 us each), compiled
    0.5-1.3x."""
    if ln is not None or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return lstm_layer_autograd(x, state, w_ih, w_hh, b_ih, b_hh, ln, h_mask)
    h0, c0 = state
    batch, steps, hidden = x.shape[0], x.shape[1], w_hh.shape[1]
    # gate rows from torch's order i, f, g, o to o, i, f, g (a roll by H): the three sigmoid gates are
    # then one block of rows, and so are the three the backward multiplies by dc_t; outside the Function,
    # so autograd rolls the gradients back into torch's order
    w_ih, w_hh, bias = w_ih.roll(hidden, 0), w_hh.roll(hidden, 0), (b_ih + b_hh).roll(hidden, 0)
    x_fm = x.permute(2, 1, 0).reshape(x.shape[2], steps * batch)  # (I, T B); no copy when x is a previous layer's output
    x_proj = torch.addmm(bias[:, None], w_ih, x_fm).view(4 * hidden, steps, batch)  # W_x* x_t + b, four gates, every t: (4H, T, B)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x_proj, w_hh, h0, c0)):
        hs, c = LSTMSteps.apply(x_proj, w_hh, h0, c0, h_mask)
    else:  # nothing to differentiate: the forward alone
        hs, c = _lstm_steps_forward(x_proj, w_hh, h0, c0, h_mask, _native_lstm(x_proj, w_hh))[:2]
    hs = hs.permute(2, 1, 0)  # (H, T, B) -> (B, T, H), a view
    return hs, (hs[:, -1], c)


def _lstm_steps_forward(x_proj, w_hh, h0, c0, h_mask, lib=None):
    """The LSTM recurrence without autograd: x_proj (4H, T, B) and w_hh (4H, H) in gate order o, i, f, g;
    h0, c0, h_mask (B, H). With `lib` (`_native_lstm`) the loop runs compiled (lstm_loop.c), else in Python.

    Returns (hidden states (H, T, B), c_T (B, H), the forward's buffers: the gates' values (T, 4H, B),
    c_0..c_T (T+1, H, B), tanh(c_t) (T, H, B)). The state is kept transposed, one column per sequence, and
    the buffers time-major, so a_t = W_h h_{t-1} + W_x x_t + b is a contiguous (4H, B) block with each gate
    H contiguous rows (tanh is several times slower on strided blocks). In Python every step is seven
    in-place operations (eight with a mask) on inference tensors (no version counters or view records:
    half the cost of a step on a small layer)."""
    hidden, steps, batch = x_proj.shape[0] // 4, x_proj.shape[1], x_proj.shape[2]
    if lib is not None:  # normal tensors (the backward keeps them), written by the compiled loop
        acts = x_proj.detach().transpose(0, 1).contiguous()  # (T, 4H, B): W_x x_t + b, overwritten with the gates' values
        cs = acts.new_empty(steps + 1, hidden, batch)  # c_0, c_1, ..., c_T
        cs[0] = c0.T
        tanh_cs, hs = acts.new_empty(steps, hidden, batch), acts.new_empty(steps, hidden, batch)  # tanh(c_t), h_t
        mask = None if h_mask is None else h_mask.T.contiguous()  # (H, B)
        h_in = (h0.T if mask is None else h0.T * mask).contiguous()  # what W_h multiplies at step 1
        h_ins = None if mask is None else torch.empty_like(hs)  # h_t ⊙ mask, what the next step's W_h multiplies
        lib.lstm_forward(steps, hidden, batch, *map(_ptr, (w_hh.detach(), acts, cs, tanh_cs, hs, h_in, mask, h_ins)))
        return hs.transpose(0, 1).contiguous(), cs[-1].T.clone(), (acts, cs, tanh_cs)
    with torch.inference_mode():
        acts = x_proj.transpose(0, 1).clone(memory_format=torch.contiguous_format)  # (T, 4H, B): W_x x_t + b, overwritten step by step with the gates' values
        cs = acts.new_empty(steps + 1, hidden, batch)  # c_0, c_1, ..., c_T
        cs[0] = c0.T
        tanh_cs, hs = acts.new_empty(steps, hidden, batch), acts.new_empty(steps, hidden, batch)  # tanh(c_t), h_t
        mask = None if h_mask is None else h_mask.T  # (H, B)
        h_ins = hs if mask is None else torch.empty_like(hs)  # what the next step's W_h multiplies: h_t, or h_t ⊙ mask
        h_in, c = (h0.T, cs[0]) if mask is None else (h0.T * mask, cs[0])  # (H, B)
        gate, h_list = acts.view(steps, 4, hidden, batch), hs.unbind(0)
        per_step = zip(acts.unbind(0), acts[:, : 3 * hidden].unbind(0), *(gate[:, k].unbind(0) for k in range(4)), cs[1:].unbind(0), tanh_cs.unbind(0), h_list, h_list if mask is None else h_ins.unbind(0))
        for a, sig, o, i, f, g, c_t, tanh_c, h_t, h_in_t in per_step:
            torch.addmm(a, w_hh, h_in, out=a)  # a_t = W_x x_t + W_h h_{t-1} + b   (out=, not addmm_: the FLOP counter counts this one)
            sig.sigmoid_()  # i_t = σ(W_xi x_t + W_hi h_{t-1} + b_i), f_t = σ(W_xf ...), o_t = σ(W_xo ...): rows o, i, f in one call
            g.tanh_()  # g_t = tanh(a_g) = tanh(W_xc x_t + W_hc h_{t-1} + b_c)
            torch.mul(f, c, out=c_t)  # c_t = f_t c_{t-1} + ...
            c_t.addcmul_(i, g)  # ... + i_t g_t
            torch.tanh(c_t, out=tanh_c)  # h_t = o_t tanh(c_t) ...
            torch.mul(o, tanh_c, out=h_t)  # ... (tanh(c_t) kept for the backward)
            if mask is not None:
                torch.mul(h_t, mask, out=h_in_t)  # recurrent dropout: h_t ⊙ mask enters the next step
            h_in, c = h_in_t, c_t
    return hs.transpose(0, 1).clone(memory_format=torch.contiguous_format), cs[-1].T.clone(), (acts, cs, tanh_cs)  # clones (always copies, even of one step): normal tensors


def _lstm_steps_backward(w_hh, dh, dc, da, dh_dc, da_dh_dc, f, dc_last, mask):
    """LSTMSteps' loop back through time in Python, on inference tensors: dh (T, H, B) holds ∂L/∂h_t from
    above and gets W_h^T da_{t+1} added; dc (T, H, B) and da (T, 4H, B) are written (see LSTMSteps.backward)."""
    steps, hidden, batch = dh_dc.shape
    da_gate, w_hh_t = da.view(steps, 4, hidden, batch), w_hh.T.contiguous()
    views = (  # per step: dh_t, dc_t, da_t, its rows da_o and da_{i,f,g}, ∂h_t/∂c_t, f_{t+1} (none after T), the gates' factors
        dh.unbind(0), dc.unbind(0), da.unbind(0), da_gate[:, 0].unbind(0), da_gate[:, 1:].unbind(0), dh_dc.unbind(0), [*f.unbind(0)[1:], torch.ones_like(f[0])],
        da_dh_dc[:, :hidden].unbind(0), da_dh_dc[:, hidden:].view(steps, 3, hidden, batch).unbind(0),
    )
    dc_next, da_next = dc_last, da.new_zeros(4 * hidden, batch)  # after the last step: ∂L/∂c_T of the final state, no a_{T+1}
    for dh_t, dc_t, da_t, da_o, da_ifg, dh_dc_t, f_next, da_o_dh, da_ifg_dc in zip(*(reversed(v) for v in views)):  # from the last step back
        if mask is None:
            torch.addmm(dh_t, w_hh_t, da_next, out=dh_t)  # dh_t = ∂L/∂h_t + W_h^T da_{t+1}   (out=: the FLOP counter counts it)
        else:
            dh_t.addcmul_(w_hh_t @ da_next, mask)  # dh_t = ∂L/∂h_t + (W_h^T da_{t+1}) ⊙ mask
        torch.mul(dh_t, dh_dc_t, out=dc_t)  # dc_t = dh_t o_t (1 - tanh²(c_t)) + ...
        dc_t.addcmul_(dc_next, f_next)  # ... + dc_{t+1} f_{t+1}
        torch.mul(dh_t, da_o_dh, out=da_o)  # da_o = dh_t tanh(c_t) σ'(a_o)
        torch.mul(dc_t, da_ifg_dc, out=da_ifg)  # (da_i, da_f, da_g) = dc_t (g_t σ'(a_i), c_{t-1} σ'(a_f), i_t tanh'(a_g))
        dc_next, da_next = dc_t, da_t


def _native_lstm(like: torch.Tensor, w_hh: torch.Tensor):
    """The compiled LSTM loops (native.py) for tensors like `like`, or None: for float32 on a CPU, and no
    dispatch mode watching the operations (torch's FLOP counter counts the Python loops' multiplies; it
    cannot see into the compiled ones)."""
    if like.dtype != torch.float32 or w_hh.dtype != torch.float32 or like.device.type != "cpu" or not w_hh.is_contiguous():
        return None
    if _get_current_dispatch_mode() is not None:
        return None
    return native.lstm_library()


def _ptr(t: torch.Tensor | None) -> int | None:
    """The address of a contiguous tensor's first element, for ctypes (None stays None: a NULL pointer)."""
    if t is None:
        return None
    if not t.is_contiguous():
        raise ValueError("the compiled LSTM loops take contiguous tensors only")
    return t.data_ptr()


class LSTMSteps(torch.autograd.Function):
    """The LSTM recurrence with its backward through time written out (the forward: `_lstm_steps_forward`).

    forward(x_proj (4H, T, B), w_hh (4H, H), h_0 (B, H), c_0 (B, H), h_mask (B, H) or None), gate rows in
    the order o, i, f, g -> (h_1..h_T (H, T, B), c_T (B, H)). Once differentiable.

    Both loops run compiled where `_native_lstm` allows (lstm_loop.c: the backward computes each step's
    gate derivatives from the forward's buffers as it goes), else in Python: there the backward loop runs
    dh_t -> dc_t -> da_t from the last step back, five operations a step, and what does not depend on the
    recurrence (the gates' derivatives) is computed for all T at once, vectorised, in the forward."""

    @staticmethod
    def forward(ctx, x_proj, w_hh, h0, c0, h_mask):
        lib = _native_lstm(x_proj, w_hh)
        hs, c_last, (acts, cs, tanh_cs) = _lstm_steps_forward(x_proj, w_hh, h0, c0, h_mask, lib)
        ctx.lib = lib
        if lib is not None:
            ctx.save_for_backward(w_hh, h0, h_mask, hs, acts, cs, tanh_cs)
            return hs, c_last
        hidden = w_hh.shape[1]
        o, i, f, g = acts.view(acts.shape[0], 4, hidden, -1).unbind(1)  # (T, H, B) each: the gates' values
        sig, one = acts[:, : 3 * hidden], acts.new_ones(())
        # normal tensors, computed from the inference tensors of the forward: ∂a_t of each gate per unit
        # of the gradient that drives it (dh_t for o, dc_t for i, f, g), (T, 4H, B)
        da_dh_dc = torch.empty(acts.shape, dtype=acts.dtype, device=acts.device)
        torch.addcmul(sig, sig, sig, value=-1, out=da_dh_dc[:, : 3 * hidden])  # σ' = σ (1 - σ) of a_o, a_i, a_f
        da_dh_dc[:, :hidden].mul_(tanh_cs)  # a_o: h_t = o_t tanh(c_t)
        da_dh_dc[:, hidden : 2 * hidden].mul_(g)  # a_i: c_t = ... + i_t g_t
        da_dh_dc[:, 2 * hidden : 3 * hidden].mul_(cs[:-1])  # a_f: c_t = f_t c_{t-1} + ...
        torch.addcmul(one, g, g, value=-1, out=da_dh_dc[:, 3 * hidden :]).mul_(i)  # a_g: c_t = ... + i_t g_t, tanh' = 1 - g_t²
        dh_dc = torch.addcmul(one, tanh_cs, tanh_cs, value=-1).mul_(o)  # ∂h_t/∂c_t = o_t (1 - tanh²(c_t))
        ctx.save_for_backward(w_hh, h0, h_mask, hs, dh_dc, da_dh_dc, f.clone())
        return hs, c_last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_hs, d_c_last):
        hidden, mask = ctx.saved_tensors[0].shape[1], None if ctx.saved_tensors[2] is None else ctx.saved_tensors[2].T  # (H, B)
        steps, batch = d_hs.shape[1], d_hs.shape[2]
        if ctx.lib is not None:  # the compiled loop writes ∂L/∂a_t straight in the layout of x_proj: (4H, T, B)
            w_hh, h0, h_mask, hs, acts, cs, tanh_cs = ctx.saved_tensors
            dh = d_hs.transpose(0, 1).contiguous()  # (T, H, B): ∂L/∂h_t from above; W_h^T da_{t+1} is added in the loop
            dc, d_x_proj = torch.empty_like(dh), dh.new_empty(4 * hidden, steps, batch)
            tensors = (w_hh.detach(), acts, cs, tanh_cs, dh, dc, d_x_proj, d_c_last.T.contiguous(), None if mask is None else mask.contiguous(), torch.empty_like(dc[0]))
            ctx.lib.lstm_backward(steps, hidden, batch, *map(_ptr, tensors))
            f0 = acts[0, 2 * hidden : 3 * hidden]  # f_1
        else:
            w_hh, h0, h_mask, hs, dh_dc, da_dh_dc, f = ctx.saved_tensors
            with torch.inference_mode():
                dh = d_hs.transpose(0, 1).clone(memory_format=torch.contiguous_format)  # (T, H, B): ∂L/∂h_t from above; W_h^T da_{t+1} is added in the loop
                dc = torch.empty_like(dh)  # ∂L/∂c_t
                da = dh.new_empty(steps, 4 * hidden, batch)  # ∂L/∂a_t, gate rows o, i, f, g
                _lstm_steps_backward(w_hh, dh, dc, da, dh_dc, da_dh_dc, f, d_c_last.T, mask)
            d_x_proj = da.transpose(0, 1).clone(memory_format=torch.contiguous_format)  # (4H, T, B), a normal tensor: a_t = x_proj_t + ..., so ∂L/∂x_proj_t = da_t
            f0 = f[0]
        h_in0, h_ins = (h0, hs) if mask is None else (h0 * h_mask, hs * mask[:, None])  # what W_h multiplied: h_0, then h_1, ... (H, T, B)
        # dW_h = Σ_t da_t h_{t-1}^T: step 1 (h_0) and steps 2..T, two multiplies
        d_w_hh = torch.addmm(d_x_proj[:, 0] @ h_in0, d_x_proj[:, 1:].reshape(4 * hidden, -1), h_ins[:, :-1].reshape(hidden, -1).T)
        d_h0 = (w_hh.T @ d_x_proj[:, 0]).T  # (B, H): h_0 enters a_1 through W_h
        if h_mask is not None:
            d_h0 = d_h0 * h_mask
        d_c0 = (dc[0] * f0).T  # c_1 = f_1 c_0 + ...
        return d_x_proj, d_w_hh, d_h0, d_c0, None


def lstm_layer_autograd(x, state, w_ih, w_hh, b_ih, b_hh, ln: LayerNorms | None = None, h_mask=None):
    """The LSTM step by step under autograd, gates in torch's order i, f, g, o: the path of layer-normalised
    cells, and the reference `LSTMSteps` is tested against.
    With `ln` (Ba et al. 2016): gates = LN(W_x x_t) + LN(W_h h_{t-1}) + b, and h_t = o_t tanh(LN(c_t))."""
    h, c = state
    x_proj = _input_projection(x, w_ih, b_ih, b_hh if ln is None else None, ln and ln.x)  # W_x* x_t (+ b), four gates, every t: (B, T, 4H)
    w_hh_t, norm_h = w_hh.T, ln and ln.h
    outputs = []
    for x_t in x_proj.unbind(1):  # (B, 4H) per step; see rnn_layer_equations on unbind
        gates = _recurrent_step(x_t, h if h_mask is None else h * h_mask, w_hh_t, b_hh, norm_h)  # (B, 4H)
        a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
        i = torch.sigmoid(a_i)  # i_t = σ(W_xi x_t + W_hi h_{t-1} + b_i)
        f = torch.sigmoid(a_f)  # f_t = σ(W_xf x_t + W_hf h_{t-1} + b_f)
        o = torch.sigmoid(a_o)  # o_t = σ(W_xo x_t + W_ho h_{t-1} + b_o)
        c = f * c + i * torch.tanh(a_g)  # c_t = f_t c_{t-1} + i_t tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        h = o * torch.tanh(c if ln is None else ln.c(c))  # h_t = o_t tanh(c_t)
        outputs.append(h)
    return torch.stack(outputs, 1), (h, c)


def gru_layer_equations(x, h, w_ih, w_hh, b_ih, b_hh, ln: LayerNorms | None = None, h_mask=None):
    """GRU (Cho et al. 2014, in torch's variant: r_t gates W_hn h_{t-1} + b_hn) over (B, T, I) from h_0 (B, H);
    returns all hidden states (B, T, H) and h_T. Without a layer norm the steps run in `GRUSteps`, a
    hand-written forward and backward through time (as the LSTM's `LSTMSteps`); with one (or under
    tracing) in the autograd loop `gru_layer_autograd`. Both compute the same function.

    On a CPU `GRUSteps` is faster than torch's own `nn.GRU`, which (unlike its LSTM) has no oneDNN
    kernel there and runs a generic loop; the default `impl="auto"` therefore takes this path for the
    GRU on a CPU (benchmarks/recurrent.py has the figures)."""
    if ln is not None or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return gru_layer_autograd(x, h, w_ih, w_hh, b_ih, b_hh, ln, h_mask)
    steps, hidden = x.shape[1], w_hh.shape[1]
    # gate rows from torch's order r, z, n to z, r, n: z and r (the sigmoid gates) one block, and so are
    # the r and n rows the backward computes from one factor; outside the Function, so autograd
    # reorders the gradients back
    order = torch.cat([torch.arange(hidden, 2 * hidden), torch.arange(hidden), torch.arange(2 * hidden, 3 * hidden)])
    w_ih, w_hh = w_ih[order], w_hh[order]
    # b_hr and b_hz fold into the input projection; b_hn stays inside r_t (W_hn h_{t-1} + b_hn)
    bias = b_ih[order] + torch.cat([b_hh[hidden : 2 * hidden], b_hh[:hidden], b_hh.new_zeros(hidden)])
    # W_x* x_t + b, three gates, every t, time-major: (T, 3H, B), T multiplies in one call; x.permute is
    # (T, I, B), contiguous when x is a previous layer's output
    x_proj = torch.baddbmm(bias[None, :, None], w_ih.expand(steps, -1, -1), x.permute(1, 2, 0))
    b_hn = b_hh[2 * hidden :]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x_proj, w_hh, b_hn, h)):
        hs = GRUSteps.apply(x_proj, w_hh, b_hn, h, h_mask)
    else:  # nothing to differentiate: the forward alone
        hs = _gru_steps_forward(x_proj, w_hh, b_hn, h, h_mask)[0]
    hs = hs.permute(2, 0, 1)  # (T, H, B) -> (B, T, H), a view
    return hs, hs[:, -1]


def _gru_steps_forward(x_proj, w_hh, b_hn, h0, h_mask):
    """The GRU recurrence without autograd: x_proj (T, 3H, B) and w_hh (3H, H) in gate order z, r, n;
    b_hn (H,); h0, h_mask (B, H).

    Returns (hidden states (T, H, B), the forward's buffers). Laid out as `_lstm_steps_forward`: the
    state transposed (one column per sequence), buffers time-major, six in-place operations a step
    (seven with a mask) on inference tensors."""
    steps, hidden, batch = x_proj.shape[0], x_proj.shape[1] // 3, x_proj.shape[2]
    with torch.inference_mode():
        acts = x_proj.clone(memory_format=torch.contiguous_format)  # (T, 3H, B): W_x x_t + b, overwritten with z_t, r_t, n_t
        hns = acts.new_empty(steps, hidden, batch)  # W_hn h_{t-1} + b_hn, kept for the backward
        hs = acts.new_empty(steps + 1, hidden, batch)  # h_0, h_1, ..., h_T
        hs[0] = h0.T
        mask = None if h_mask is None else h_mask.T  # (H, B)
        h_ins = hs if mask is None else torch.empty_like(hs)  # what W_h multiplies: h_{t-1}, or h_{t-1} ⊙ mask
        if mask is not None:
            torch.mul(hs[0], mask, out=h_ins[0])
        w_zr, w_n, b_n = w_hh[: 2 * hidden], w_hh[2 * hidden :], b_hn[:, None]
        gate = acts.view(steps, 3, hidden, batch)
        per_step = zip(acts[:, : 2 * hidden].unbind(0), *(gate[:, k].unbind(0) for k in range(3)), hns.unbind(0), hs[:-1].unbind(0), hs[1:].unbind(0), h_ins[:-1].unbind(0), h_ins[1:].unbind(0))
        for zr, z, r, n, hn, h_prev, h_t, h_in, h_in_next in per_step:
            torch.addmm(zr, w_zr, h_in, out=zr)  # W_xz x_t + W_hz h_{t-1} + b_z, and the same for r   (out=: counted by the FLOP counter)
            zr.sigmoid_()  # z_t = σ(...), r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r): rows z, r in one call
            torch.addmm(b_n, w_n, h_in, out=hn)  # W_hn h_{t-1} + b_hn
            n.addcmul_(r, hn).tanh_()  # n_t = tanh(W_xn x_t + b_in + r_t (W_hn h_{t-1} + b_hn))
            torch.lerp(n, h_prev, z, out=h_t)  # h_t = (1 - z_t) n_t + z_t h_{t-1} = n_t + z_t (h_{t-1} - n_t)
            if mask is not None:
                torch.mul(h_t, mask, out=h_in_next)  # recurrent dropout: h_t ⊙ mask enters the next step
    return hs[1:].clone(), (acts, hns, hs, h_ins)  # a clone: a normal tensor


class GRUSteps(torch.autograd.Function):
    """The GRU recurrence with its backward through time written out (the forward: `_gru_steps_forward`).

    forward(x_proj (T, 3H, B), w_hh (3H, H), b_hn (H,), h_0 (B, H), h_mask (B, H) or None), gate rows in the
    order z, r, n -> h_1..h_T (T, H, B). Once differentiable.

    The backward runs dh_t -> (da_z, da_r, da_n, d(W_hn h + b_hn)) from the last step back, five
    operations a step; the gates' derivative factors are computed for all T at once."""

    @staticmethod
    def forward(ctx, x_proj, w_hh, b_hn, h0, h_mask):
        hs_out, (acts, hns, hs, h_ins) = _gru_steps_forward(x_proj, w_hh, b_hn, h0, h_mask)
        hidden = w_hh.shape[1]
        z, r, n = acts.view(acts.shape[0], 3, hidden, -1).unbind(1)  # (T, H, B) each
        one = acts.new_ones(())
        # normal tensors, computed from the inference tensors of the forward
        dn = torch.addcmul(one, n, n, value=-1).mul_(1 - z)  # ∂a_n per unit of dh_t: (1 - z_t)(1 - n_t²), a_n the tanh's argument
        dz = (hs[:-1] - n).mul_(z).mul_(1 - z)  # ∂a_z per unit of dh_t: (h_{t-1} - n_t) σ'(a_z)
        r_hn = torch.stack([hns * r * (1 - r), r.clone()], 1)  # per unit of da_n: ∂a_r = (W_hn h + b_hn) σ'(a_r), ∂(W_hn h + b_hn) = r_t; (T, 2, H, B)
        h_in = h_ins[:-1].clone() if h_mask is not None else hs[:-1].clone()  # what W_h multiplied at every step
        ctx.save_for_backward(w_hh, h_mask, dn, dz, r_hn, z.clone(), h_in)
        return hs_out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_hs):
        w_hh, h_mask, dn, dz, r_hn, z, h_in = ctx.saved_tensors
        steps, hidden, batch = dn.shape
        mask = None if h_mask is None else h_mask.T  # (H, B)
        with torch.inference_mode():
            dh = d_hs.clone(memory_format=torch.contiguous_format)  # (T, H, B): ∂L/∂h_t from above; the recurrence's part is added below
            dg = dh.new_empty(steps, 3 * hidden, batch)  # rows da_z, da_r, d(W_hn h_{t-1} + b_hn): what W_h's rows z, r, n receive
            da_n = torch.empty_like(dh)  # ∂L/∂a_n, what W_xn x_t + b_in receives
            w_hh_t = w_hh.T.contiguous()
            views = (dh.unbind(0), dg.unbind(0), dg[:, :hidden].unbind(0), dg[:, hidden:].view(steps, 2, hidden, batch).unbind(0), da_n.unbind(0), dn.unbind(0), dz.unbind(0), r_hn.unbind(0), [*z.unbind(0)[1:], None])
            dh_next, dg_next = None, None
            for dh_t, dg_t, da_z, da_rn, da_n_t, dn_t, dz_t, r_hn_t, z_next in zip(*(reversed(v) for v in views)):  # from the last step back
                if dg_next is not None:  # h_t enters step t+1 through W_h and through z_{t+1} h_t
                    if mask is None:
                        torch.addmm(dh_t, w_hh_t, dg_next, out=dh_t)  # dh_t += W_h^T dg_{t+1}
                    else:
                        dh_t.addcmul_(w_hh_t @ dg_next, mask)  # dh_t += (W_h^T dg_{t+1}) ⊙ mask
                    dh_t.addcmul_(dh_next, z_next)  # dh_t += z_{t+1} dh_{t+1}
                torch.mul(dh_t, dn_t, out=da_n_t)  # da_n = dh_t (1 - z_t)(1 - n_t²)
                torch.mul(dh_t, dz_t, out=da_z)  # da_z = dh_t (h_{t-1} - n_t) σ'(a_z)
                torch.mul(da_n_t, r_hn_t, out=da_rn)  # da_r = da_n (W_hn h + b_hn) σ'(a_r);  d(W_hn h + b_hn) = da_n r_t
                dh_next, dg_next = dh_t, dg_t
            d_h0 = None
            if ctx.needs_input_grad[3]:  # a given initial state that requires grad (truncated BPTT)
                d_h0 = (w_hh_t @ dg[0]) if mask is None else (w_hh_t @ dg[0]) * mask  # h_0 enters step 1 through W_h ...
                d_h0.addcmul_(dh[0], z[0])  # ... and through z_1 h_0
        d_x_proj = torch.cat([dg[:, : 2 * hidden], da_n], 1)  # (T, 3H, B): rows z, r take da_z, da_r; rows n da_n
        # dW_h = Σ_t dg_t h_in_{t-1}^T, one multiply over all steps; d b_hn = Σ d(W_hn h + b_hn)
        dg_fm = dg.transpose(0, 1).reshape(3 * hidden, steps * batch)
        d_w_hh = dg_fm @ h_in.transpose(0, 1).reshape(hidden, steps * batch).T
        d_b_hn = dg_fm[2 * hidden :].sum(1)
        return d_x_proj, d_w_hh, d_b_hn, None if d_h0 is None else d_h0.T.clone(), None


def gru_layer_autograd(x, h, w_ih, w_hh, b_ih, b_hh, ln: LayerNorms | None = None, h_mask=None):
    """The GRU step by step under autograd, gates in torch's order r, z, n: the path of layer-normalised
    cells, and the reference `GRUSteps` is tested against.
    With `ln`, both projections are layer-normalised per gate before their biases."""
    x_r, x_z, x_n = _project(x, w_ih, b_ih, ln and ln.x).chunk(3, dim=2)  # input parts of all gates, every t: 3 x (B, T, H)
    w_hh_t = w_hh.T
    outputs = []
    for x_r_t, x_z_t, x_n_t in zip(x_r.unbind(1), x_z.unbind(1), x_n.unbind(1)):  # see rnn_layer_equations on unbind
        h_in = h if h_mask is None else h * h_mask
        # W_h* h_{t-1} + b_h* in one multiply-add (b_hn must stay inside r_t (...), so it is not folded into x)
        h_proj = torch.addmm(b_hh, h_in, w_hh_t) if ln is None else _project(h_in, w_hh, b_hh, ln.h)
        h_r, h_z, h_n = h_proj.chunk(3, dim=1)  # (B, H) each; chunks, not slices: their backward is cheaper
        r = torch.sigmoid(x_r_t + h_r)  # r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)
        z = torch.sigmoid(x_z_t + h_z)  # z_t = σ(W_xz x_t + W_hz h_{t-1} + b_z)
        n = torch.tanh(x_n_t + r * h_n)  # n_t = tanh(W_xn x_t + r_t (W_hn h_{t-1} + b_hn))
        h = n + z * (h - n)  # h_t = (1 - z_t) n_t + z_t h_{t-1}
        outputs.append(h)
    return torch.stack(outputs, 1), h


class RecurrentLayers(nn.Module):
    """A stack of recurrent layers whose parameters live in torch's fused module.

    forward(x (B, T, I)) -> hidden states of the top layer (B, T, H).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0):
        super().__init__()
        if cell not in CELLS:
            raise UserError(f"unknown recurrent cell '{cell}'; valid choices: {', '.join(CELLS)}")
        if impl not in IMPLS:
            raise UserError(f"unknown recurrent implementation '{impl}'; valid choices: {', '.join(IMPLS)}")
        if norm not in NORMS:
            raise UserError(f"model '{cell}': norm must be one of {', '.join(NORMS)}, got {norm!r}")
        # torch's fused cells have neither layer norm nor dropout on h_{t-1}: those cells run the equations
        self.cell, self.impl = cell, ("equations" if norm == "layer" or recurrent_dropout > 0 else impl)
        self.recurrent_dropout = recurrent_dropout
        self.norms = nn.ModuleList(LayerNorms(cell, hidden_size, input_size if k == 0 else hidden_size) for k in range(num_layers)) if norm == "layer" else None
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        # dropout between stacked layers (on each layer's outputs but the last), as torch's fused module does
        self.fused = CELLS[cell](input_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]  # (B, T, H), from a zero state

    def run(self, x: torch.Tensor, state=None):
        """(top-layer hidden states (B, T, H), final state) from `state` (None: zeros).

        A state is torch's: h (num_layers, B, H), or for the LSTM the pair (h, c) of that shape, so
        either path can continue what the other began (truncated BPTT, sampling one step at a time)."""
        if self.uses_fused(x):
            return self.fused(x, state)
        return self.forward_equations(x, state)

    def uses_fused(self, x: torch.Tensor) -> bool:
        """Whether `x` runs through torch's fused module: with impl="fused", and with "auto" (the default)
        except for a GRU of at most GRU_STEPS_MAX_HIDDEN units on a CPU, whose equation-written path
        (`GRUSteps`) is the faster there; a traced or compiled model (ONNX export) always gets the fused
        module."""
        if self.impl != "auto":
            return self.impl == "fused"
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return True
        return not (self.cell == "gru" and x.device.type == "cpu" and self.hidden_size <= GRU_STEPS_MAX_HIDDEN)

    def forward_equations(self, x: torch.Tensor, state=None):
        b = x.shape[0]
        finals = []
        for k in range(self.num_layers):
            w = [getattr(self.fused, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h0 = self._initial(state, k, x, b)
            ln = None if self.norms is None else self.norms[k]
            mask = None
            if self.training and self.recurrent_dropout > 0:  # variational: one mask per sequence and layer (Gal & Ghahramani 2016)
                keep = 1 - self.recurrent_dropout
                mask = torch.bernoulli(x.new_full((b, self.hidden_size), keep)) / keep
            if self.cell == "lstm":
                x, final = lstm_layer_equations(x, h0, *w, ln=ln, h_mask=mask)
            elif self.cell == "gru":
                x, final = gru_layer_equations(x, h0, *w, ln=ln, h_mask=mask)
            else:
                x, final = rnn_layer_equations(x, h0, *w, ln=ln, h_mask=mask)
            finals.append(final)
            if k < self.num_layers - 1 and self.dropout:
                x = nn.functional.dropout(x.contiguous(), self.dropout, self.training)  # contiguous: the mask drawn as the fused path draws it
        if self.cell == "lstm":  # per-layer (h, c) -> torch's layout: h (L, B, H), c (L, B, H); x (B, T, H) contiguous, as the fused path's
            return x.contiguous(), (torch.stack([h for h, _ in finals]), torch.stack([c for _, c in finals]))
        return x, torch.stack(finals)  # (B, T, H), h (L, B, H)

    def _initial(self, state, k: int, x: torch.Tensor, b: int):
        """Layer k's initial state from a torch-layout `state`; zeros when there is none."""
        if state is None:
            h0 = x.new_zeros(b, self.hidden_size)
            return (h0, h0) if self.cell == "lstm" else h0
        if self.cell == "lstm":
            return state[0][k], state[1][k]
        return state[k]


class RecurrentNet(nn.Module):
    """Sequence view (B, T, F) -> recurrent layers (B, T, H) -> last hidden state (B, H) -> Linear (W_hy).

    `dropout` (Zaremba et al. 2014) drops inputs, the outputs passed between stacked layers and the
    hidden states read by the classifier, never the recurrent connection h_{t-1} -> h_t, so the
    memory itself is not disturbed from step to step. `recurrent_dropout` does drop h_{t-1} where it
    enters W_hh, with one mask per sequence (the same units dropped at every step; Gal & Ghahramani 2016)."""

    def __init__(self, meta, cell: str, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0):
        super().__init__()
        check_positive_int("hidden_size", hidden_size, cell)
        check_positive_int("num_layers", num_layers, cell)
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(p, bool) or not (isinstance(p, (int, float)) and 0 <= p < 1):
                raise UserError(f"model '{cell}': {name} must be in [0, 1), got {p!r}")
        self.drop = nn.Dropout(dropout)
        steps, features = sequence_shape(meta)
        self.kind, self.n_symbols = meta.kind, symbols(meta)
        self.recurrent = RecurrentLayers(cell, features, hidden_size, num_layers, impl, dropout, norm, recurrent_dropout)
        self.head = nn.Linear(hidden_size, meta.output_size)  # y = W_hy h_T
        self.per_step = meta.task == "per_step"

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """Top-layer hidden states for every step (B, T, H)."""
        return self.recurrent(self.drop(sequence_view(x, self.kind, self.n_symbols)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_step:
            return self.head(self.drop(self.hidden_states(x)))  # y_t = W_hy h_t for every t: (B, T, n_classes)
        # padded series: the state after the last real step, which the padding that follows cannot touch
        return self.head(self.drop(last_step(self.hidden_states(x), lengths)))  # (B, outputs)

    def forward_stream(self, x: torch.Tensor, state=None):
        """One label per position, continuing from `state` (None: zeros): (outputs (B, T, n_classes),
        final state). Consecutive chunks of one text, each fed the state the chunk before ended in,
        give the outputs of the whole text read at once (truncated BPTT; sampling a step at a time)."""
        h, state = self.recurrent.run(self.drop(sequence_view(x, self.kind, self.n_symbols)), state)  # (B, T, H)
        return self.head(self.drop(h)), state

    def context_length(self) -> int | None:
        """Positions an output depends on: None, unbounded; the state carries everything read before."""
        return None


@register_model("rnn", family="recurrent", summary="vanilla (Elman) RNN, h_t = tanh(W_xh x_t + W_hh h_{t-1}); reads series step by step, images row by row", default_lr=3e-3, width="hidden_size")
def build_rnn(meta, *, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0) -> nn.Module:
    return RecurrentNet(meta, "rnn", hidden_size, num_layers, impl, dropout, norm, recurrent_dropout)


@register_model("lstm", family="recurrent", summary="long short-term memory: gated cell state c_t carries information across many steps", default_lr=1e-2, width="hidden_size")
def build_lstm(meta, *, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0) -> nn.Module:
    return RecurrentNet(meta, "lstm", hidden_size, num_layers, impl, dropout, norm, recurrent_dropout)


@register_model("gru", family="recurrent", summary="gated recurrent unit: LSTM-like gating with two gates and no separate cell state", default_lr=1e-2, width="hidden_size")
def build_gru(meta, *, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0) -> nn.Module:
    return RecurrentNet(meta, "gru", hidden_size, num_layers, impl, dropout, norm, recurrent_dropout)

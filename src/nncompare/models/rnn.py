"""Recurrent networks: vanilla RNN, LSTM and GRU, weights tied across time steps.

Each cell is written twice: from its equations (below, plain autograd loops through time, one line per
equation, the equation quoted), and as torch's fused `nn.RNN` / `nn.LSTM` / `nn.GRU`. Both read the
*same* parameters (torch's layout: `weight_ih_l{k}` stacks the input weights of every gate,
`weight_hh_l{k}` the recurrent ones), so `impl="equations"` and `impl="fused"` compute the same
function; tests hold them to 1e-5 with copied weights (tests/test_rnn_oracle.py).

`impl` (IMPLS) picks the path from the model's own hyperparameters, never from the device, the size or
the machine: "auto", the default, is torch's fused module on every device, and the equations where the
fused module cannot express the cell (layer norm, recurrent dropout on h_{t-1}); "fused" asks for the
fused module (a UserError for those variants); "equations" runs the loops below.

Series are read step by step (B, L, C); images row by row (B, H, C*W). The classifier reads the last
hidden state (of the last real step, for padded series): everything the model knows about the
sequence has to pass through it.

A long whole series is read in segments: each recurrent step takes `segment` consecutive steps at
once (their values side by side, p x C inputs), so the recurrence runs over at most
MAX_RECURRENT_STEPS steps (`default_segment`). Gradients through hundreds of recurrent steps vanish or
explode (Bengio et al. 1994; Pascanu et al. 2013), and each step is sequential work a CPU cannot share
out; reading segments is SegRNN's remedy for long series (Lin et al. 2023) and PatchTST's for attention
(Nie et al. 2023). Measured in docs/benchmarks.md ("Recurrent models read long series in segments").
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .layers import READOUTS, check_positive_int, read_out, sequence_shape, sequence_view, symbols
from .registry import register_model

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
IMPLS = ("auto", "fused", "equations")
NORMS = ("none", "layer")
MAX_RECURRENT_STEPS = 64  # a whole series longer than this is read in segments (default_segment)


def default_segment(meta) -> int:
    """Steps a recurrent model reads per recurrent step by default: on a whole series (one label per
    series) of L steps, the fewest that keep the recurrence within MAX_RECURRENT_STEPS steps,
    ceil(L / MAX_RECURRENT_STEPS); 1 (step by step) for shorter series, images (row by row), text
    and one label per position."""
    if meta.kind != "series" or meta.task == "per_step":
        return 1
    return max(1, math.ceil(meta.input_shape[0] / MAX_RECURRENT_STEPS))


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


# The loops below are plain autograd: torch derives their backward through time. They are written for few
# operations per step: on a CPU a small recurrent layer's time goes to the per-operation overhead of every
# step, forward and backward (benchmarks/recurrent.py, 1 thread, batch 32: per training step the LSTM's loop
# took 1.3-5.0x torch's fused LSTM's time, the GRU's 1.0-1.1x, the RNN's 0.7-1.0x). torch.compile of a whole
# layer-normalised or recurrent-dropout LSTM (64 units, 40 steps) made a step 1.5-1.65x faster (15.2 against
# 23.3 ms, 10.4 against 17.2 ms) but took 67-191 s to compile, growing with the length (the loop is unrolled),
# and on a CPU it builds C++ with the machine's compiler: not used, so no result depends on one.


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
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate) over (B, T, I) from state (h_0, c_0), each (B, H),
    gates in torch's order i, f, g, o; returns all hidden states (B, T, H) and (h_T, c_T).
    With `ln` (Ba et al. 2016): gates = LN(W_x x_t) + LN(W_h h_{t-1}) + b, and h_t = o_t tanh(LN(c_t))."""
    h, c = state
    x_proj = _input_projection(x, w_ih, b_ih, b_hh if ln is None else None, ln and ln.x)  # W_x* x_t (+ b), four gates, every t: (B, T, 4H)
    w_hh_t, norm_h = w_hh.T, ln and ln.h
    outputs = []
    for x_t in x_proj.unbind(1):  # (B, 4H) per step; see rnn_layer_equations on unbind
        h_in = h if h_mask is None else h * h_mask  # recurrent dropout: one mask for the whole sequence
        gates = _recurrent_step(x_t, h_in, w_hh_t, b_hh, norm_h)  # W_x* x_t + W_h* h_{t-1} + b, four gates: (B, 4H)
        a_i, a_f, a_g, a_o = gates.chunk(4, dim=1)
        i = torch.sigmoid(a_i)  # i_t = σ(W_xi x_t + W_hi h_{t-1} + b_i)
        f = torch.sigmoid(a_f)  # f_t = σ(W_xf x_t + W_hf h_{t-1} + b_f)
        o = torch.sigmoid(a_o)  # o_t = σ(W_xo x_t + W_ho h_{t-1} + b_o)
        c = f * c + i * torch.tanh(a_g)  # c_t = f_t c_{t-1} + i_t tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        h = o * torch.tanh(c if ln is None else ln.c(c))  # h_t = o_t tanh(c_t)
        outputs.append(h)
    return torch.stack(outputs, 1), (h, c)


def gru_layer_equations(x, h, w_ih, w_hh, b_ih, b_hh, ln: LayerNorms | None = None, h_mask=None):
    """GRU (Cho et al. 2014, in torch's variant: r_t gates W_hn h_{t-1} + b_hn) over (B, T, I) from h_0 (B, H),
    gates in torch's order r, z, n; returns all hidden states (B, T, H) and h_T.
    With `ln`, both projections are layer-normalised per gate before their biases."""
    x_r, x_z, x_n = _project(x, w_ih, b_ih, ln and ln.x).chunk(3, dim=2)  # input parts of all gates, every t: 3 x (B, T, H)
    w_hh_t = w_hh.T
    outputs = []
    for x_r_t, x_z_t, x_n_t in zip(x_r.unbind(1), x_z.unbind(1), x_n.unbind(1)):  # see rnn_layer_equations on unbind
        h_in = h if h_mask is None else h * h_mask  # recurrent dropout: one mask for the whole sequence
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
        needs_equations = norm == "layer" or recurrent_dropout > 0
        if impl == "fused" and needs_equations:
            variant = "norm='layer'" if norm == "layer" else f"recurrent_dropout={recurrent_dropout}"
            raise UserError(f"model '{cell}': torch's fused {CELLS[cell].__name__} cannot compute {variant}; use impl='auto' or impl='equations'")
        self.cell, self.impl = cell, ("equations" if needs_equations else impl)
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
        if self.uses_fused():
            return self.fused(x, state)
        return self.forward_equations(x, state)

    def uses_fused(self) -> bool:
        """Whether the layers run through torch's fused module: with impl "auto" (the default) and "fused",
        on every device; a cell the fused module cannot express was given impl "equations" when built."""
        return self.impl != "equations"

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

    def __init__(self, meta, cell: str, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0, readout: str = "last", segment: int | str = "auto"):
        super().__init__()
        if isinstance(segment, str) and segment == "auto":
            segment = default_segment(meta)
        check_positive_int("segment", segment, cell)
        if segment > 1 and (meta.kind != "series" or meta.task == "per_step"):
            raise UserError(f"model '{cell}': segment applies to a whole series (one label per series); this data set's inputs are read one step at a time, so use segment=1")
        self.segment = segment
        self.stored_args = {"segment": segment}  # what a stored run records, whatever rule chose it
        if readout not in READOUTS:
            raise UserError(f"model '{cell}': readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        self.readout = readout
        check_positive_int("hidden_size", hidden_size, cell)
        check_positive_int("num_layers", num_layers, cell)
        for name, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(p, bool) or not (isinstance(p, (int, float)) and 0 <= p < 1):
                raise UserError(f"model '{cell}': {name} must be in [0, 1), got {p!r}")
        self.drop = nn.Dropout(dropout)
        steps, features = sequence_shape(meta)
        self.kind, self.n_symbols = meta.kind, symbols(meta)
        self.recurrent = RecurrentLayers(cell, features * segment, hidden_size, num_layers, impl, dropout, norm, recurrent_dropout)
        self.head = nn.Linear(hidden_size, meta.output_size)  # y = W_hy h_T
        self.per_step = meta.task == "per_step"

    def segments(self, x: torch.Tensor) -> torch.Tensor:
        """The sequence the recurrence reads: (B, T, F), or with segments of p steps (B, ceil(T/p), p*F),
        the last segment completed with zeros (those a padded series already ends in)."""
        v = sequence_view(x, self.kind, self.n_symbols)
        p = self.segment
        if p == 1:
            return v
        b, t, f = v.shape
        short = (p - t % p) % p
        if short:
            v = F.pad(v, (0, 0, 0, short))
        return v.reshape(b, (t + short) // p, p * f)

    def _states(self, x: torch.Tensor) -> torch.Tensor:
        return self.recurrent(self.drop(self.segments(x)))  # (B, recurrent steps, H)

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """Top-layer hidden states for every step of the input (B, T, H); read in segments, every step
        of a segment shows the state after the whole segment."""
        h = self._states(x)
        if self.segment > 1:
            h = h.repeat_interleave(self.segment, dim=1)[:, : x.shape[1]]
        return h

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_step:
            return self.head(self.drop(self._states(x)))  # y_t = W_hy h_t for every t: (B, T, n_classes)
        if lengths is not None and self.segment > 1:
            lengths = torch.div(lengths + self.segment - 1, self.segment, rounding_mode="floor")  # segments holding a real step
        # padded series: the state after the last real step (or the mean of the real steps' states), which the padding that follows cannot touch
        return self.head(self.drop(read_out(self._states(x), lengths, self.readout)))  # (B, outputs)

    def forward_stream(self, x: torch.Tensor, state=None):
        """One label per position, continuing from `state` (None: zeros): (outputs (B, T, n_classes),
        final state). Consecutive chunks of one text, each fed the state the chunk before ended in,
        give the outputs of the whole text read at once (truncated BPTT; sampling a step at a time)."""
        h, state = self.recurrent.run(self.drop(sequence_view(x, self.kind, self.n_symbols)), state)  # (B, T, H)
        return self.head(self.drop(h)), state

    def context_length(self) -> int | None:
        """Positions an output depends on: None, unbounded; the state carries everything read before."""
        return None


@register_model("rnn", family="recurrent", summary="vanilla (Elman) RNN, h_t = tanh(W_xh x_t + W_hh h_{t-1}); reads series step by step (a long one a segment at a time), images row by row", default_lr=3e-3, width="hidden_size")
def build_rnn(meta, *, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0, readout: str = "last", segment: int | str = "auto") -> nn.Module:
    return RecurrentNet(meta, "rnn", hidden_size, num_layers, impl, dropout, norm, recurrent_dropout, readout, segment)


@register_model("lstm", family="recurrent", summary="long short-term memory: gated cell state c_t carries information across many steps", default_lr=1e-2, width="hidden_size")
def build_lstm(meta, *, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0, readout: str = "last", forget_bias: float | None = None, segment: int | str = "auto") -> nn.Module:
    """`forget_bias`: the forget gate's bias at initialisation. torch draws every bias at random around
    0 (None, the default, keeps that), so f_t starts near 0.5; 1, as Gers et al. (2000) and Jozefowicz
    et al. (2015) set it, starts f_t near 0.73, so the cell keeps more of its memory from the first
    step. Measured on nine UCR/UEA sets it did not help (docs/benchmarks.md), so it is not the default."""
    if forget_bias is not None and (isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)) or not math.isfinite(forget_bias)):
        raise UserError(f"model 'lstm': forget_bias must be a number (or None: torch's initialisation), got {forget_bias!r}")
    net = RecurrentNet(meta, "lstm", hidden_size, num_layers, impl, dropout, norm, recurrent_dropout, readout, segment)
    if forget_bias is not None:
        with torch.no_grad():  # b_if + b_hf = forget_bias, in every layer (gates in torch's order i, f, g, o)
            for k in range(num_layers):
                getattr(net.recurrent.fused, f"bias_ih_l{k}")[hidden_size : 2 * hidden_size].fill_(forget_bias)
                getattr(net.recurrent.fused, f"bias_hh_l{k}")[hidden_size : 2 * hidden_size].zero_()
    return net


@register_model("gru", family="recurrent", summary="gated recurrent unit: LSTM-like gating with two gates and no separate cell state", default_lr=1e-2, width="hidden_size")
def build_gru(meta, *, hidden_size: int = 64, num_layers: int = 1, impl: str = "auto", dropout: float = 0.0, norm: str = "none", recurrent_dropout: float = 0.0, readout: str = "last", segment: int | str = "auto") -> nn.Module:
    return RecurrentNet(meta, "gru", hidden_size, num_layers, impl, dropout, norm, recurrent_dropout, readout, segment)

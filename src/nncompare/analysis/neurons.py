"""What the units of a trained model respond to.

- recurrent: hidden-unit activations over the steps of one input (a heatmap over time); for text,
  the characters of a passage with one unit's activation each (Karpathy et al. 2015);
- convolutional: the first layer's filters and the activation maps they produce on one input;
- MLP: the first layer's weights drawn in input space (one picture per unit);
- every family: per unit, the inputs that activate it most.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


@torch.no_grad()
def unit_activations(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Per-example, per-unit activations of the model's first hidden representation.

    recurrent: top-layer hidden states (N, T, H); convolutional: the first block's output, (N, C, L) or
    (N, C, H, W); MLP: the first hidden block's output (N, units), or (N, T, units) per position.
    """
    was_training = model.training
    model.eval()
    try:
        if hasattr(model, "hidden_states"):  # recurrent
            return model.hidden_states(x).numpy()
        seen = []
        handle = _first_block(model).register_forward_hook(lambda m, i, o: seen.append(o.detach()))
        try:
            model(x)
        finally:
            handle.remove()
        return seen[0].numpy()
    finally:
        model.train(was_training)


def _first_block(model: nn.Module) -> nn.Module:
    """The first hidden block whose output is the first layer of features (after its activation)."""
    if hasattr(model, "features") and isinstance(model.features, nn.ModuleList):  # CNN: conv, (norm), activation
        return model.features[0][-1]  # the activation: its output is the block's (the CNN calls a block's modules one by one)
    if hasattr(model, "blocks"):  # TCN
        return model.blocks[0]
    if hasattr(model, "body"):  # MLP: Linear, (norm), activation, ... -> up to the activation
        linear_or_norm = (nn.Linear, nn.Dropout, nn.BatchNorm1d) + tuple(type(m) for m in model.body if type(m).__name__ == "FeatureBatchNorm")
        return next(layer for layer in model.body if not isinstance(layer, linear_or_norm))  # the first activation
    raise ValueError(f"no known first block in {type(model).__name__}")


def first_layer_weights(model: nn.Module, meta) -> np.ndarray | None:
    """First-layer weights in input space: CNN/TCN filters (C_out, C_in, k) or (C_out, C_in, kh, kw);
    MLP: one row per unit shaped like one input (units, *input_shape). None for recurrent models."""
    if hasattr(model, "hidden_states"):
        return None
    first = next(m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))
    w = first.weight.detach().numpy()
    if isinstance(first, nn.Linear):
        if meta.task == "per_step":
            return w  # (units, symbols * window): a window of the past, not one input
        return w.reshape(w.shape[0], *meta.input_shape)
    return w


def top_activating(per_input: np.ndarray, k: int = 5) -> np.ndarray:
    """Per unit, the indices of the `k` inputs with the highest activation, highest first: (units, k).
    `per_input` is (N, units), e.g. from `per_input_unit_max`."""
    return np.argsort(-per_input, axis=0, kind="stable")[:k].T


def per_input_unit_max(activations: np.ndarray, layout: str) -> np.ndarray:
    """(N, units): each input's largest activation of each unit over its positions.

    layout: "units_last" for (N, T, units) (recurrent, MLP per position), "channels_first" for
    (N, C, L) or (N, C, H, W) (convolutions), "flat" for (N, units)."""
    if layout == "flat":
        return activations
    if layout == "units_last":
        return activations.max(1)
    return activations.reshape(activations.shape[0], activations.shape[1], -1).max(-1)


def feature_correlations(hidden: np.ndarray, features: dict[str, np.ndarray]) -> list[dict]:
    """For each named per-character feature (e.g. inside quotes, indentation), the hidden unit whose
    activation correlates most with it: [{"feature", "unit", "r"}], strongest first.

    hidden: (T, H) activations over one passage; features: name -> (T,) values."""
    out = []
    for name, f in features.items():
        f = np.asarray(f, dtype=float)
        if f.std() == 0:
            continue
        h = hidden - hidden.mean(0)
        denom = np.sqrt((h**2).sum(0) * ((f - f.mean()) ** 2).sum())
        r = np.divide((h * (f - f.mean())[:, None]).sum(0), denom, out=np.zeros(h.shape[1]), where=denom > 0)
        unit = int(np.argmax(np.abs(r)))
        out.append({"feature": name, "unit": unit, "r": float(r[unit])})
    return sorted(out, key=lambda d: -abs(d["r"]))


def text_features(text: str) -> dict[str, np.ndarray]:
    """Simple per-character features of a passage: inside quotes, inside brackets, position in the line,
    indentation of the line."""
    quote, depth, col, indent = [], [], [], []
    in_quote, d, c, ind, at_start, skip = None, 0, 0, 0, True, 0
    for k, ch in enumerate(text):
        if skip:  # the 2nd and 3rd character of a triple quote
            skip -= 1
        elif ch in "'\"" and (in_quote is None or in_quote[0] == ch):
            token = ch * 3 if text.startswith(ch * 3, k) else ch  # Python's triple quotes open and close as one
            if in_quote is None:
                in_quote = token
            elif in_quote == token:
                in_quote = None
            skip = len(token) - 1
        elif in_quote is None and ch in "([{":
            d += 1
        elif in_quote is None and ch in ")]}":
            d = max(d - 1, 0)
        if ch == "\n":
            c, ind, at_start = 0, 0, True
        else:
            c += 1
            if at_start and ch == " ":
                ind += 1
            else:
                at_start = False
        quote.append(1.0 if in_quote else 0.0)
        depth.append(float(d))
        col.append(float(c))
        indent.append(float(ind))
    return {"inside quotes": np.array(quote), "bracket depth": np.array(depth), "line position": np.array(col), "indentation": np.array(indent)}

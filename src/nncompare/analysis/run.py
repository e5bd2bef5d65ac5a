"""Every analysis of one trained model on its data, gathered as plain data for the report."""

from __future__ import annotations

import numpy as np
import torch

from .cost import flops_per_example
from .metrics import calibration, confusion, least_confident, most_uncertain
from .neurons import feature_correlations, first_layer_weights, per_input_unit_max, text_features, top_activating, unit_activations
from .predict import has_dropout, mc_dropout_proba, predict_proba, predictive_entropy
from .span import gradient_profile, span_of, theoretical_receptive_field

GALLERY = 8  # examples in the low-confidence and high-uncertainty galleries
SPAN_EXAMPLES = 200  # test examples whose input gradients make the span profile
MC_PASSES = 20  # stochastic passes for MC dropout (Gal & Ghahramani 2016 use 10-100)
MC_EXAMPLES = 1000  # test examples scored under MC dropout (all, for the usual test sets)
TOP_UNITS = 4  # units shown with their most activating inputs


def _rows(split, stop: int):
    x = split.x[:stop]
    lengths = None if split.lengths is None else split.lengths[:stop]
    return x, lengths


def analyse_run(model: torch.nn.Module, dataset, seed: int = 0) -> dict:
    """Predictions, confusion, calibration, galleries, span, neurons and cost of one model on the test split.

    Classification and per-position tasks get all of it; regression gets span, neurons and cost only.
    Deterministic for a model, data set and seed (the MC dropout masks come from `seed`).
    """
    meta, test = dataset.meta, dataset.test
    out: dict = {"task": meta.task, "kind": meta.kind}
    x_all, len_all = test.x, test.lengths
    out["flops"] = flops_per_example(model, x_all, len_all)
    out["receptive_field"] = theoretical_receptive_field(model)
    x_span, len_span = _rows(test, SPAN_EXAMPLES)
    profile = gradient_profile(model, x_span, meta, len_span)
    out["span_profile"] = profile
    out["span"] = span_of(profile, per_step=meta.task == "per_step")

    if meta.task != "regress":
        probs = predict_proba(model, x_all, len_all)
        y = test.y.numpy()
        pred = probs.argmax(-1)
        out["accuracy"] = float((pred == y).mean())
        out["confusion"] = confusion(y, pred, meta.n_classes)
        out["calibration"] = calibration(probs, y)
        low = least_confident(probs, GALLERY)
        out["least_confident"] = [_example(int(i), probs, y, meta) for i in low]
        if has_dropout(model):
            x_mc, len_mc = _rows(test, MC_EXAMPLES)
            mc = mc_dropout_proba(model, x_mc, len_mc, passes=MC_PASSES, seed=seed)
            entropy = predictive_entropy(mc.reshape(MC_PASSES, len(x_mc), -1, mc.shape[-1]).mean(2) if meta.task == "per_step" else mc)
            out["mc_dropout"] = {
                "passes": MC_PASSES,
                "examples": len(x_mc),
                "mean_entropy": float(entropy.mean()),
                "most_uncertain": [{**_example(int(i), mc.mean(0), y, meta), "entropy": float(entropy[i])} for i in most_uncertain(entropy, GALLERY)],
            }
    out["neurons"] = _neurons(model, dataset)
    return out


def _example(i: int, probs: np.ndarray, y: np.ndarray, meta) -> dict:
    """One test example's index, true and predicted labels and confidence (per-position tasks: the
    last position's prediction, the next character of the window)."""
    p = probs[i][-1] if meta.task == "per_step" else probs[i]
    true = int(y[i][-1]) if meta.task == "per_step" else int(y[i])
    top = np.argsort(-p)[:3]
    return {"index": i, "true": true, "pred": int(top[0]), "confidence": float(p[top[0]]), "top": [(int(k), float(p[k])) for k in top]}


def _neurons(model, dataset) -> dict:
    meta, test = dataset.meta, dataset.test
    x, lengths = _rows(test, 256)
    acts = unit_activations(model, x)
    recurrent = hasattr(model, "hidden_states")
    out: dict = {"family": "recurrent" if recurrent else ("feed-forward" if hasattr(model, "body") else "convolutional")}
    if recurrent or acts.ndim == 3 and out["family"] == "feed-forward":
        layout = "units_last"
    elif acts.ndim == 2:
        layout = "flat"
    else:
        layout = "channels_first"
    out["example"] = 0
    out["example_activations"] = acts[0]  # recurrent (T, H); conv (C, L) / (C, H, W); MLP (units,)
    out["weights"] = first_layer_weights(model, meta)
    per_input = per_input_unit_max(acts, layout)
    units = np.argsort(-per_input.var(0), kind="stable")[:TOP_UNITS]  # the units that vary most between inputs
    top = top_activating(per_input, k=5)
    out["top_inputs"] = [{"unit": int(u), "inputs": top[u].tolist(), "values": per_input[top[u], u].tolist()} for u in units]
    if meta.kind == "text" and recurrent:
        out["text"] = _text_units(model, test, meta)
    return out


def _text_units(model, test, meta) -> dict:
    """A held-out passage and, for each simple feature, the hidden unit that tracks it best."""
    ids = test.x[:4].reshape(1, -1)  # 4 consecutive windows of the contiguous test block: one passage
    with torch.no_grad():
        hidden = model.hidden_states(ids)[0].numpy()  # (T, H)
    passage = "".join(meta.class_names[int(i)] for i in ids[0])
    best = feature_correlations(hidden, text_features(passage))
    return {"passage": passage, "units": [{**b, "activations": hidden[:, b["unit"]]} for b in best]}

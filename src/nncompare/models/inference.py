"""A trained model applied to inputs in its data set's natural layout: shape checks that name both
shapes, outputs in batches, class probabilities and predictions. `StoredRun.predict` and
`nncompare predict` call these."""

from __future__ import annotations

import numpy as np
import torch

from ..data.inputs import as_model_input
from ..errors import UserError


@torch.no_grad()
def model_outputs(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Raw outputs in eval mode, in batches, on the model's device; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    if not out:
        raise UserError("no inputs given; give at least one example")
    return torch.cat(out)


def probabilities(model, meta, x) -> np.ndarray:
    """Class probabilities: (N, K), or (N, T, K) for one label per position."""
    if meta.task == "regress":
        raise UserError("this run predicts values (regression), which have no class probabilities; use predict")
    return torch.softmax(model_outputs(model, as_model_input(x, meta)).double(), dim=-1).numpy()


def predictions(model, meta, x) -> np.ndarray:
    """Class names (or ids when the data set names none) for classification, one per input (per
    position for per-position tasks); predicted values (N,) or (N, D) for regression."""
    out = model_outputs(model, as_model_input(x, meta))
    if meta.task == "regress":
        values = out.double().numpy()
        return values.reshape(len(values), -1)[:, 0] if meta.n_outputs <= 1 else values.reshape(len(values), -1)
    ids = out.argmax(-1).numpy()
    if meta.class_names and len(meta.class_names) == meta.n_classes:
        return np.asarray(meta.class_names, dtype=object)[ids]
    return ids

"""A trained model applied to inputs in its data set's natural layout: shape checks that name both
shapes, outputs in batches, class probabilities and predictions. `StoredRun.predict` and
`nncompare predict` call these."""

from __future__ import annotations

import numpy as np
import torch

from ..data.inputs import as_model_input, shorter_series
from ..errors import UserError


@torch.no_grad()
def model_outputs(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Raw outputs in eval mode, in batches, on the model's device; the model's mode is restored.
    `lengths`: the real steps of zero-padded series of varying length, as in training."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            out.append((model(xb) if lengths is None else model(xb, lengths[i : i + batch_size].to(device))).cpu())
    finally:
        model.train(was_training)
    if not out:
        raise UserError("no inputs given; give at least one example")
    return torch.cat(out)


def padded_input(x, meta, lengths=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`x` as the model's input tensor and the real steps of each series (None when every series has
    all the run's steps). A run trained on series of varying length also takes shorter series: an
    array of fewer steps (each series that long unless `lengths` says less), or series zero-padded to
    the run's length with their `lengths` (data/inputs.py `shorter_series`). A run trained on series
    of one length takes only that."""
    x, lengths = shorter_series(x, meta, lengths)
    tensor = as_model_input(x, meta)
    if lengths is None:
        return tensor, None
    if len(lengths) != len(tensor):
        raise UserError(f"{len(tensor)} series but {len(lengths)} lengths; give one length per series")
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    tensor[torch.arange(tensor.shape[1])[None, :] >= lengths[:, None]] = 0  # the padding, as in training
    return tensor, lengths


def probabilities(model, meta, x, lengths=None) -> np.ndarray:
    """Class probabilities: (N, K), or (N, T, K) for one label per position."""
    if meta.task == "regress":
        raise UserError("this run predicts values (regression), which have no class probabilities; use predict")
    tensor, lengths = padded_input(x, meta, lengths)
    return torch.softmax(model_outputs(model, tensor, lengths=lengths).double(), dim=-1).numpy()


def predictions(model, meta, x, lengths=None) -> np.ndarray:
    """Class names (or ids when the data set names none) for classification, one per input (per
    position for per-position tasks); predicted values (N,) or (N, D) for regression."""
    tensor, lengths = padded_input(x, meta, lengths)
    out = model_outputs(model, tensor, lengths=lengths)
    if meta.task == "regress":
        values = out.double().numpy()
        if meta.target_scaling:  # targets read from a file were standardised: back to the file's units
            values = meta.target_scaling["mean"] + meta.target_scaling["std"] * values
        return values.reshape(len(values), -1)[:, 0] if meta.n_outputs <= 1 else values.reshape(len(values), -1)
    ids = out.argmax(-1).numpy()
    if meta.class_names and len(meta.class_names) == meta.n_classes:
        return np.asarray(meta.class_names, dtype=object)[ids]
    return ids

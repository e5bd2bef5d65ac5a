"""Class probabilities of a trained model, deterministic or under MC dropout."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn


def _batches(x: torch.Tensor, lengths: torch.Tensor | None, batch_size: int):
    for start in range(0, len(x), batch_size):
        stop = start + batch_size
        yield x[start:stop], None if lengths is None else lengths[start:stop]


def _call(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    return model(x) if lengths is None else model(x, lengths)


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities in eval mode: (N, K) for one label per input, (N, T, K) per position."""
    was_training = model.training
    model.eval()
    try:
        out = [torch.softmax(_call(model, xb, lb), dim=-1) for xb, lb in _batches(x, lengths, batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The model's dropout layers that drop something (p > 0)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


def has_dropout(model: nn.Module) -> bool:
    return bool(dropout_layers(model))


@contextmanager
def _dropout_sampling(model: nn.Module):
    """Eval mode everywhere except the dropout layers, which keep sampling masks (MC dropout).

    Batch norm stays on its running statistics, so the passes differ by their dropout masks alone.
    Dropout written into the recurrent equations (variational, on h_{t-1}) follows its layer's eval
    mode and is not sampled; the dropout layers on inputs, between layers and before the head are.
    """
    was_training = model.training
    model.eval()
    for m in dropout_layers(model):
        m.train()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def mc_dropout_proba(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None, passes: int = 20, seed: int = 0, batch_size: int = 512) -> np.ndarray:
    """Probabilities of `passes` stochastic forward passes with dropout on (Gal & Ghahramani 2016):
    (passes, N, K). The masks come from a generator seeded by `seed`, so the result is reproducible."""
    if not has_dropout(model):
        raise ValueError("the model has no dropout layer with p > 0; MC dropout needs one")
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        with _dropout_sampling(model):
            runs = [torch.cat([torch.softmax(_call(model, xb, lb), -1) for xb, lb in _batches(x, lengths, batch_size)]) for _ in range(passes)]
    finally:
        torch.set_rng_state(state)  # the caller's random stream is left as it was
    return torch.stack(runs).numpy()


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the mean prediction over the first axis of (passes, N, K) -> (N,)."""
    mean = probs.mean(0)
    return -(mean * np.log(np.clip(mean, 1e-12, None))).sum(-1)

"""Model registry (timm style): `@register_model` fills it, `create_model` is the only way to build one.

Every model takes the data set's `DatasetMeta` first and maps a batch in the data set's natural layout
(series (B, L, C), images (B, C, H, W)) to outputs for its task; layout changes happen inside the model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from ..errors import UserError, did_you_mean

_MODELS: dict[str, "ModelInfo"] = {}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # "feed-forward", "convolutional" or "recurrent"
    summary: str  # one line for `nncompare models`
    builder: Callable[..., nn.Module]
    default_lr: float  # Adam learning rate used unless the user sets one for all models (--lr)

    def hyperparameters(self) -> dict:
        """Keyword arguments the builder accepts (besides `meta`) with their defaults."""
        sig = inspect.signature(self.builder)
        return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def register_model(name: str, family: str, summary: str, default_lr: float):
    """Register `builder(meta, **hyperparameters) -> nn.Module`.

    `default_lr` is the Adam learning rate this architecture trains well with at the default batch
    size (measured on MNIST-1D, see benchmarks/mnist1d.py); `--lr` replaces it for every model.
    """

    def wrap(builder):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelInfo(name=name, family=family, summary=summary, builder=builder, default_lr=default_lr)
        return builder

    return wrap


def list_models() -> list[ModelInfo]:
    return list(_MODELS.values())  # registration order: mlp, cnn, tcn, rnn, lstm, gru


def model_names() -> list[str]:
    return list(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise UserError(f"unknown model '{name}'; {did_you_mean(str(name), model_names())}")
    return _MODELS[name]


def create_model(name: str, meta, **overrides) -> nn.Module:
    """Build model `name` for a data set described by `meta`; `overrides` set its hyperparameters."""
    info = get_model_info(name)
    valid = info.hyperparameters()
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(
            f"model '{name}' has no hyperparameter {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
        )
    return info.builder(meta, **overrides)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# registration happens on import of the families, in the order `nncompare models` lists them
from . import mlp, cnn, tcn, rnn  # noqa: E402,F401

__all__ = ["create_model", "list_models", "model_names", "get_model_info", "register_model", "count_parameters", "ModelInfo"]

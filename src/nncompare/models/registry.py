"""The model registry (timm style): `@register_model` fills it, `create_model` is the only way to build one.

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
    width: str  # the hyperparameter that sets the model's size (units, channels); see match_parameters

    def hyperparameters(self) -> dict:
        """Keyword arguments the builder accepts (besides `meta`) with their defaults."""
        sig = inspect.signature(self.builder)
        return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def register_model(name: str, family: str, summary: str, default_lr: float, width: str):
    """Register `builder(meta, **hyperparameters) -> nn.Module`.

    `default_lr` is the Adam learning rate this architecture trains well with at the default batch
    size (measured on MNIST-1D, see benchmarks/mnist1d.py); `--lr` replaces it for every model.
    `width` names the hyperparameter that sets the size (hidden units, channels), which
    `match_parameters` solves for.
    """

    def wrap(builder):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        if width not in inspect.signature(builder).parameters:
            raise ValueError(f"model {name!r}: width {width!r} is not one of its hyperparameters")
        _MODELS[name] = ModelInfo(name=name, family=family, summary=summary, builder=builder, default_lr=default_lr, width=width)
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


def check_takes(name: str, meta) -> None:
    """A UserError when model `name` cannot read data of `meta`'s kind: the columns of a table have no
    order or neighbourhood for a convolution or a recurrence to exploit, so only feed-forward models take tables."""
    info = get_model_info(name)
    if getattr(meta, "kind", None) == "table" and info.family != "feed-forward":
        raise UserError(
            f"model '{name}' ({info.family}) reads its input as ordered positions, which the columns of a table are not; "
            f"only feed-forward models ({', '.join(m for m, i in _MODELS.items() if i.family == 'feed-forward')}) take tables: use `models='mlp'`"
        )


def models_for_data(models: list[str], meta, chosen: bool) -> tuple[list[str], list[str]]:
    """(the models that take this data, notes): a default list (`chosen` False) skips the ones that
    cannot read it with a note; a model the user chose is refused with check_takes's UserError."""
    keep, skipped = [], []
    for m in models:
        try:
            check_takes(m, meta)
            keep.append(m)
        except UserError:
            if chosen:
                raise
            skipped.append(m)
    notes = [f"{', '.join(skipped)} skipped: a table's columns are not ordered positions for convolutions or recurrences to exploit; the MLP is compared with the non-neural reference"] if skipped else []
    return keep, notes


def create_model(name: str, meta, **overrides) -> nn.Module:
    """Build model `name` for a data set described by `meta`; `overrides` set its hyperparameters."""
    info = get_model_info(name)
    check_takes(name, meta)
    valid = info.hyperparameters()
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(
            f"model '{name}' has no hyperparameter {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
        )
    return info.builder(meta, **overrides)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def match_parameters(name: str, meta, target: int, tolerance: float = 0.05, **overrides) -> dict:
    """The hyperparameters that give model `name` about `target` trainable parameters on `meta`.

    Parameter counts grow monotonically with the width (units or channels), so a bisection over
    whole widths finds the width whose count is closest to `target`; the other hyperparameters
    (`overrides`) stay as given. Returns `overrides` plus the width. A UserError says when no width
    lands within `tolerance` (a fraction of `target`), e.g. when the fixed layers alone are larger.
    """
    info = get_model_info(name)
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise UserError(f"a parameter budget must be a positive whole number such as 20000, got {target!r}")

    def count(width: int) -> int:
        import torch

        with torch.device("meta"):  # structure only: a huge trial width costs no memory
            return count_parameters(create_model(name, meta, **{**overrides, info.width: width}))

    low, high = 1, 2
    while count(high) < target:  # grow until the budget is bracketed
        low, high = high, high * 2
        if high > 1 << 20:
            break
    while high - low > 1:
        mid = (low + high) // 2
        if count(mid) < target:
            low = mid
        else:
            high = mid
    best = min((low, high), key=lambda w: abs(count(w) - target))
    achieved = count(best)
    if abs(achieved - target) > tolerance * target:
        raise UserError(
            f"model '{name}' cannot be sized to {target:,} parameters (closest: {achieved:,} with {info.width}={best}); "
            f"choose a budget nearer {achieved:,} or change its other hyperparameters"
        )
    return {**overrides, info.width: best}


# Hyperparameters whose default changed after runs were stored with the old one: a stored config.json
# without the key was trained with the value here (the weights' shapes are the same, so only this
# tells them apart). Before 2026-12-06 the TCN read its last step and had no batch norm by default;
# runs from then on record "readout" and "norm" (None: the rule in models/tcn.py default_norm). Before
# 2026-12-07 the recurrent models read every series step by step; runs from then on record "segment".
# Until the morning of 2026-12-07 the series CNN had no fixed filters beside its first layer; runs since
# record "handcrafted" (there the weights' shapes differ too).
# Until the evening of 2026-12-07 the CNN and the TCN read a long series as it is; runs since record
# "downsample".
STORED_DEFAULTS = {"tcn": {"readout": "last", "norm": "none", "downsample": 1}, "cnn": {"handcrafted": False, "downsample": 1}, **{cell: {"segment": 1} for cell in ("rnn", "lstm", "gru")}}
# Stored values whose meaning changed: the CNN's kernel_size "auto" stood for the rule of 2026-12-06
# (first kernel 1% of the series); runs from then on record the kernel sizes themselves.
STORED_VALUES = {"cnn": {"kernel_size": {"auto": "auto-1%"}}}


def stored_model_args(model: str, model_args: dict) -> dict:
    """The hyperparameters a stored run was trained with: its config's model_args, with the old value
    of each default that has changed since (STORED_DEFAULTS) where the config does not name it, and
    each value whose meaning changed (STORED_VALUES) in its old meaning."""
    args = {**STORED_DEFAULTS.get(model, {}), **model_args}
    for key, meanings in STORED_VALUES.get(model, {}).items():
        if isinstance(args.get(key), str) and args[key] in meanings:
            args[key] = meanings[args[key]]
    return args


# one option for every architecture -> the hyperparameter each model calls it by
LAYER_NAMES = ("depth", "levels", "num_layers")  # MLP/CNN layers, TCN residual blocks, stacked RNN layers
# what --norm can mean per family: batch norm between layers, or a layer-normalised recurrent cell
NORMS_BY_FAMILY = {"feed-forward": ("none", "batch"), "convolutional": ("none", "batch"), "recurrent": ("none", "layer")}
SHARED_OPTIONS = ("width", "layers", "activation", "dropout", "norm", "residual", "recurrent_dropout", "readout")


def shared_overrides(name: str, **options) -> tuple[dict, list[str]]:
    """Translate the options every architecture understands (`width`, `layers`, `activation`,
    `dropout`, `norm`, `residual`, `recurrent_dropout`, `readout`; None = not given) into model `name`'s own hyperparameters.

    Returns (overrides, notes): an option a model has no counterpart for is left out and named in a
    note (e.g. the LSTM's gates fix their own nonlinearities, so `activation` does not apply)."""
    info = get_model_info(name)
    valid = info.hyperparameters()
    overrides, notes = {}, []
    for option, value in options.items():
        if option not in SHARED_OPTIONS:
            raise ValueError(f"unknown shared option {option!r}")
        if value is None:
            continue
        if option == "width":
            key = info.width
        elif option == "layers":
            key = next((k for k in LAYER_NAMES if k in valid), None)
        else:
            key = option if option in valid else None
        if option == "norm" and key is not None and value not in NORMS_BY_FAMILY[info.family]:
            notes.append(f"`norm={value!r}` does not apply to {name} (it takes {' or '.join(NORMS_BY_FAMILY[info.family])})")
            continue
        if key is None:
            notes.append(f"`{option}` does not apply to {name}")
        else:
            overrides[key] = value
    return overrides, notes


def parse_models(models) -> list[str]:
    """Model names from a list or a comma-separated string (None: every model), each checked once."""
    if models is None:
        return model_names()
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    models = [m for m in models if m]
    if not models:
        raise UserError(f"no models given; choose from {', '.join(model_names())}")
    for m in models:
        get_model_info(m)  # raises UserError listing the valid names
    if len(set(models)) != len(models):
        raise UserError(f"a model is listed twice in {','.join(models)}; list each once")
    return models

"""Models: MLP, CNN, TCN and the recurrent RNN/LSTM/GRU, one file per family, registered in
registry.py (`@register_model`); `create_model` is the only way to build one.

Every model takes the data set's `DatasetMeta` first and maps a batch in the data set's natural layout
(series (B, L, C), images (B, C, H, W)) to outputs for its task; layout changes happen inside the model.
"""

from .registry import ModelInfo, check_takes, count_parameters, create_model, models_for_data, get_model_info, list_models, match_parameters, model_names, parse_models, register_model, shared_overrides

# registration happens on import of the families, in the order `nncompare models` lists them
from . import mlp, cnn, tcn, rnn  # noqa: E402,F401

__all__ = ["check_takes", "models_for_data", "shared_overrides", "create_model", "list_models", "model_names", "get_model_info", "register_model", "count_parameters", "match_parameters", "parse_models", "ModelInfo"]

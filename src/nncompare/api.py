"""Library entry points a notebook user calls; the CLI calls the same ones."""

from __future__ import annotations

from dataclasses import replace

from .data import load_dataset
from .models import create_model
from .runs.runner import config_for_model
from .train import RunResult, TrainConfig, fit
from .utils import set_seed


def train(data: str, model: str, seed: int = 0, config: TrainConfig | None = None, on_epoch=None, data_options: dict | None = None, **model_args):
    """Train one model on one data set; returns (trained model, RunResult). Nothing is stored.

    >>> net, result = train("digits", "cnn", seed=0, config=TrainConfig(max_epochs=5))
    """
    dataset = load_dataset(data, **(data_options or {}))
    config = config_for_model(replace(config or TrainConfig(), seed=seed), model).validate()
    set_seed(seed)
    net = create_model(model, dataset.meta, **model_args)
    result: RunResult = fit(net, dataset, config, on_epoch=on_epoch)
    return net, result

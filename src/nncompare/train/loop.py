"""`fit`: train a model on a data set and test it. It picks the way of training (train/epochs.py's
strategies: supervised, without validation, semi-supervised, text read as streams) and runs the one
epoch loop with it. No framework: on a 5k-parameter model the per-step overhead of one is a large
share of the step (DESIGN.md)."""

from __future__ import annotations

import torch.nn as nn

from ..errors import UserError
from .checkpoint import Checkpointer
from .config import TrainConfig
from .protocol import resolve_validation
from .epochs import NoValidation, Strategy, Supervised, run_epochs
from .semi import semi_strategy
from .steps import EpochCallback, RunResult, flush_denormals
from .streams import Streams, streams_apply


def fit(model: nn.Module, dataset, config: TrainConfig, on_epoch: EpochCallback | None = None, checkpoint: Checkpointer | None = None) -> RunResult:
    """Train `model` on `dataset.train`, early-stop on `dataset.val` loss, restore the best weights,
    then measure test loss/accuracy and inference speed. Returns the per-epoch history and metrics.

    Shuffling uses a CPU generator seeded from `config.seed`, so the batch order is the same on every
    device. The model's initial weights are the caller's business (see `nncompare.api.train`).
    With `config.refit`, the model is then trained again from those initial weights on train+val for
    the best epoch count, and that model is tested; with `config.labels`, training is semi-supervised
    (`train/semi.py`); next-character text is read as streams, recurrent state carried across chunks
    (`train/streams.py`); with `config.validation == "none"` there is no validation split
    (`epochs.NoValidation`); "auto", the default, chooses one of the two by the training set's size
    (`train/protocol.py`).

    With `checkpoint`, the loop's whole state is saved at every epoch end and a run that finds a
    checkpoint goes on from it, giving the numbers an uninterrupted run gives (train/checkpoint.py).
    The refit phase is not checkpointed per epoch: a run stopped in it trains that phase again from
    its start, which the last checkpoint holds. Text read as streams is not checkpointed: a stopped
    text run starts again. On a CPU, denormal numbers are flushed to zero while it trains (`flush_denormals`).
    """
    config = resolve_validation(config.validate(), dataset)  # "auto": decided by the training set's size
    with flush_denormals(config.device):
        return run_epochs(strategy_for(model, dataset, config), on_epoch, checkpoint)


def strategy_for(model: nn.Module, dataset, config: TrainConfig) -> Strategy:
    """The way `model` trains on `dataset` under `config`."""
    if config.labels is not None:
        return semi_strategy(model, dataset, config)
    if streams_apply(dataset.meta, model):  # next-character text: read as streams (truncated BPTT)
        if config.validation == "none":
            raise UserError("validation='none' is not available for next-character text, which is read as streams; use validation='split'")
        return Streams(model, dataset, config)
    if config.validation == "none":
        return NoValidation(model, dataset, config)
    return Supervised(model, dataset, config)

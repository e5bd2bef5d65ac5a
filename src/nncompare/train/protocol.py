"""Which protocol a run trains under when the user leaves it to the data (`validation="auto"`, the default).

A validation split is what early stopping needs, but on a small training set it costs a large share of
the labels: UCR sets have 20-400 training series, and a fifth of 36 is 8 series, too few to choose an
epoch by. Below SMALL_TRAINING_SET labelled examples a run therefore trains without one, under the
protocol FCN and ResNet for series were published with (Wang et al. 2017; Fawaz et al. 2019, dl-4-tsc):
on train + validation, the learning rate halved when the training loss stops falling, the weights of
the lowest training loss kept, their batch-norm statistics recomputed over the training data (the
moving averages a run leaves belong to later weights). A classifier stops once its mean training loss
is below `fitted_loss` (1e-4 by default, epochs.NoValidation.done): the data is fitted. Measured on eight bundled UCR/UEA sets (2 seeds each, every other
setting pinned; `python benchmarks/defaults.py`, docs/benchmarks.md), mean test accuracy with a split
-> without: MLP 74.4 -> 78.1, TCN 73.0 -> 76.3, GRU 71.3 -> 75.3, LSTM 66.7 -> 71.5, the CNN with batch
norm 80.8 -> 84.7. Larger sets keep the split and early stopping,
as do runs that need a validation split (refit, semi-supervised labels, tuning) or label every position.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .config import FITTED_LOSS

SMALL_TRAINING_SET = 1000  # labelled training examples (train + validation) below which no split is held out


def resolve_validation(config, dataset):
    """`config` with validation "auto" decided for `dataset`: "none" for a small training set (see the
    module docstring), else "split". An explicit "split" or "none" is kept as it is."""
    if config.validation != "auto":
        return config
    return replace(config, validation="none" if small_training_set(config, dataset) else "split")


def small_training_set(config, dataset) -> bool:
    """Whether `dataset` is small enough to train without a validation split under `config`."""
    n = len(dataset.train) + len(dataset.val)
    needs_split = config.refit or config.labels is not None or config.schedule != "constant" or dataset.meta.task == "per_step"
    return n < SMALL_TRAINING_SET and not needs_split


def protocol_note(config, dataset) -> str | None:
    """One line for the user when "auto" chose to train without a validation split."""
    if config.validation != "auto" or not small_training_set(config, dataset):
        return None
    n = len(dataset.train) + len(dataset.val)
    fitted = ""
    if config.fitted_loss > 0 and dataset.meta.task != "regress":
        fitted = f", and stops once its mean training loss is below {config.fitted_loss:g}, the data fitted (--fitted-loss 0 trains every epoch)"
    return (
        f"{n} labelled training examples (under {SMALL_TRAINING_SET}): no validation split is held out; every model trains on all "
        "of them, halves its learning rate when the training loss stops falling and keeps the weights of its lowest training "
        f"loss, with batch-norm statistics recomputed for those weights (the protocol of FCN, Wang et al. 2017){fitted}; --validation split "
        "holds a fifth out for early stopping instead"
    )


def unused_fitted_loss_note(config, dataset) -> str | None:
    """One line for the user who set fitted_loss where it does nothing: with a validation split, where
    early stopping ends a run, or on a regression task, whose loss has no such scale."""
    if config.fitted_loss == FITTED_LOSS:
        return None
    if dataset.meta.task == "regress":
        return "--fitted-loss has no effect here: it stops classifiers only (a regression loss has no fitted level)"
    if resolve_validation(config, dataset).validation != "none":
        return "--fitted-loss has no effect here: these runs hold a validation split out and stop early on it; it applies without one (--no-validation, or under 1000 labelled examples)"
    return None


def planned_epochs(config, dataset) -> int:
    """The epochs a run of `config` (a model's, from config_for_model) on `dataset` is budgeted, as
    run_epochs works them out (steps.epoch_budget over the batches of the split it trains on); a run
    may stop before them (early stopping, the fitted stop). For the progress display's ETA."""
    from .steps import epoch_budget

    config = resolve_validation(config, dataset)
    n = len(dataset.train) + (len(dataset.val) if config.validation == "none" else 0)
    steps = math.ceil(n / min(config.batch_size, n)) if n else 1
    return epoch_budget(config, steps)[0]

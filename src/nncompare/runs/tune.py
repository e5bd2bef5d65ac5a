"""Equal search budgets: before the seeded runs of a comparison, every model gets the same search of its
settings, by a number of Optuna trials (`tune=K`), by a share of a time budget (`budget=SECONDS`),
or both (whichever ends first). The search is scored on the validation split only; the test split is
not even given to a trial (its place is taken by the validation split), so no choice can depend on it.

What is searched, for each model, among the settings the user did not fix:
- the Adam learning rate, log-uniform in LR_RANGE;
- the width (units or channels), from a quarter to four times the model's default, log-uniform
  (FCN's 128 channels are four times the default CNN's 32);
- the depth, 1-4 hidden layers (MLP) or convolutions (CNN), 1-2 stacked layers (recurrent models);
- batch norm on or off for the feed-forward and convolutional models (layer-normalised recurrent cells
  run the Python equations, several times slower, so the search leaves them out).
A parameter budget (`params`) fixes the size: then only the learning rate is searched.

The first trial is the model's defaults (as the seeded runs would train without a search), so a
setting changes only where a trial beats them on validation, and a budget too short for a second trial
keeps them. Each trial is one training run with seed 0 under the comparison's training rules, on the split of the
training data held out for validation (even where the seeded runs train without one: a choice needs
held-out data); its score is its best validation loss. Trials report that loss after every epoch and
Optuna's successive-halving pruner (Li et al. 2018, asynchronous) stops the ones that lag the others at
the same epoch, so a time budget buys more trials. The sampler is TPE with a fixed seed: the same
number of trials gives the same choices; a time budget gives as many trials as the machine's speed allows.

A time budget is shared equally: with W workers and M models, each model searches for budget x W / M
seconds on one worker, so the whole search takes about `budget` of wall time, and no trial runs past
the moment the budget ends: each trial's max_seconds is what is left of its model's share less what
the trial before it spent outside its epochs (building the model, putting the data in place), and no
trial starts when that leaves nothing. A trial is scored by its best validation loss alone: it is
not tested and its speed is not measured.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from ..errors import UserError

LR_RANGE = (1e-4, 3e-2)  # Adam learning rates searched (log-uniform)
WIDTH_FACTOR = 4  # widths searched: the model's default width / 4 .. x 4 (log-uniform, whole numbers)
DEPTHS = {"depth": (1, 4), "num_layers": (1, 2)}  # the depth hyperparameters searched, by name, with their range
NORMS = ("none", "batch")  # searched for feed-forward and convolutional models
SEARCH_NORM_FAMILIES = ("feed-forward", "convolutional")


def _optuna():
    try:
        import optuna
    except ImportError:  # pragma: no cover - optuna is a dependency; this guards a broken install
        raise UserError("tuning needs Optuna: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def search_space(model: str, model_args: dict, fixed_size: bool) -> list[str]:
    """The hyperparameters (besides "lr") searched for `model`: its width, depth and norm, less the ones
    `model_args` fixes; none when a parameter budget fixes the size (`fixed_size`): the learning rate alone."""
    from ..models import get_model_info

    info = get_model_info(model)
    names = info.hyperparameters()
    if fixed_size:  # a parameter budget: depth and norm would move the size off it
        return []
    space = [info.width, *(d for d in DEPTHS if d in names)]
    if "norm" in names and info.family in SEARCH_NORM_FAMILIES:
        space.append("norm")
    return [k for k in space if k not in model_args]


def default_trial(model: str, space: list[str], model_args: dict, base_width: int, meta) -> dict:
    """The search's first trial: the model's own defaults (its recommended rate, width, depth and norm as
    resolved for this data), so a setting is only changed where a trial beat the defaults on validation,
    and a budget that buys a single trial keeps them."""
    import torch.nn as nn

    from ..models import create_model, get_model_info

    info = get_model_info(model)
    defaults = info.hyperparameters()
    params = {"lr": info.default_lr}
    for name in space:
        if name == info.width:
            params[name] = base_width
        elif name in DEPTHS:
            params[name] = min(max(defaults[name], DEPTHS[name][0]), DEPTHS[name][1])
        elif name == "norm":  # None lets the model choose by the data (the series CNN: batch norm); ask the model built
            built = create_model(model, meta, **model_args)
            params[name] = "batch" if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in built.modules()) else "none"
    return params


def tune_model(dataset_name: str, model: str, trials: int | None, train: dict, model_args: dict, data_options: dict, fixed_size: bool, threads: int | None = None, seconds: float | None = None, deadline: float | None = None) -> dict:
    """Search one model's settings for `trials` trials and/or `seconds` of wall time (never past
    `deadline`, a time.time() value); returns {"lr", each searched hyperparameter: its value,
    "val_loss", "trials", "pruned"} (and "seconds" spent when a time budget was given)."""
    import torch

    from ..data import load_dataset
    from ..models import create_model, get_model_info
    from ..train import TrainConfig
    from ..train.epochs import run_epochs
    from ..train.loop import strategy_for
    from ..train.steps import flush_denormals
    from ..train.protocol import resolve_validation
    from ..utils import set_seed

    if threads:
        torch.set_num_threads(threads)
    optuna = _optuna()
    start = time.time()
    end = min(x for x in (start + seconds if seconds else math.inf, deadline or math.inf))
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo (about 2 s, once
    # per process): paid here, the first trial's overhead is a trial's, not an import's
    info = get_model_info(model)
    loaded = load_dataset(dataset_name, **data_options)
    dataset = replace(loaded, test=loaded.val)  # a trial never sees the test split: its final scores are on validation
    space = search_space(model, model_args, fixed_size)
    base_width = model_args.get(info.width) or info.hyperparameters()[info.width]
    if base_width is None:  # the MLP picks its width by task (models/mlp.py)
        from ..models.mlp import PER_STEP_WIDTH, WIDTH

        base_width = PER_STEP_WIDTH if dataset.meta.task == "per_step" else WIDTH
    base = replace(TrainConfig(**train), validation="split", refit=False, seed=0)  # choices are made on held-out data

    def objective(trial) -> float:
        args = dict(model_args)
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        for name in space:
            if name == info.width:
                low = max(1, base_width // WIDTH_FACTOR)
                args[name] = trial.suggest_int(name, low, max(low + 1, base_width * WIDTH_FACTOR), log=True)
            elif name in DEPTHS:
                args[name] = trial.suggest_int(name, *DEPTHS[name])
            elif name == "norm":
                args[name] = trial.suggest_categorical(name, NORMS)
        trial_start = time.time()
        left = end - trial_start - overhead[0]  # the training time left once this trial's setup and scoring are paid
        if math.isfinite(left) and left <= 0:
            study.stop()  # not even the setup of one more trial fits in the share
            trial.set_user_attr("skipped", True)
            raise optuna.TrialPruned()
        max_seconds = base.max_seconds if not math.isfinite(left) else min(base.max_seconds or left, left)
        config = replace(base, lr=lr, max_seconds=max_seconds).validate()
        trained = [0.0]

        def report(row: dict) -> None:
            trained[0] += row["seconds"]
            trial.report(row["val_loss"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            set_seed(0)
            strategy = strategy_for(create_model(model, dataset.meta, **args), dataset, resolve_validation(config, dataset))
            strategy.measures = False  # a trial is scored by its validation loss: no test pass, no speed measurement
            with flush_denormals(config.device):  # as fit trains
                history = run_epochs(strategy, report).history
        finally:  # what a trial costs besides its epochs: building the model, putting the data in place
            overhead[0] = time.time() - trial_start - trained[0]
        return min((row["val_loss"] for row in history if math.isfinite(row["val_loss"])), default=float("inf"))

    overhead = [0.0]  # what the latest trial spent outside its epochs (kept off the next trial's training time)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0), pruner=optuna.pruners.SuccessiveHalvingPruner())
    study.enqueue_trial(default_trial(model, space, model_args, base_width, dataset.meta))  # the first trial: what the seeds would train without a search
    timeout = None if not math.isfinite(end) else max(end - time.time(), 0.0)
    study.optimize(objective, n_trials=trials, timeout=timeout)
    tried = [t for t in study.trials if not t.user_attrs.get("skipped")]
    done = [t for t in tried if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in tried)
    if not done:  # the budget ended inside the first trial, or every trial was pruned: keep the defaults
        chosen = {"lr": get_model_info(model).default_lr, "val_loss": float("nan")}
    else:
        chosen = {**study.best_params, "val_loss": study.best_value}
    out = {**chosen, "trials": len(tried), "pruned": pruned}
    if seconds or deadline:
        out["seconds"] = round(time.time() - start, 1)
    return out

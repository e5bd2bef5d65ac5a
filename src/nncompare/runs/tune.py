"""Equal tuning budgets: every architecture gets the same number of Optuna trials of its learning rate
(and width, unless a parameter budget fixes it), scored on the validation split only, before the
seeded runs of a comparison. The test split is never part of any choice.

Each trial is one training run with seed 0 under the comparison's training rules; its score is the
best validation loss of that run. The sampler is Optuna's TPE with a fixed seed, so the same
comparison chooses the same values again.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..errors import UserError

LR_RANGE = (1e-4, 3e-2)  # Adam learning rates searched (log-uniform)
WIDTH_FACTOR = 4  # widths searched: the model's default width / 4 .. x 4 (log-uniform, whole numbers)


def _optuna():
    try:
        import optuna
    except ImportError:  # pragma: no cover - optuna is a dependency; this guards a broken install
        raise UserError("--tune needs Optuna: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def tune_model(dataset_name: str, model: str, trials: int, train: dict, model_args: dict, data_options: dict, tune_width: bool, threads: int | None = None) -> dict:
    """Run `trials` trials for one model; returns {"lr", width name: value (when tuned), "val_loss", "trials"}."""
    import torch

    from ..data import load_dataset
    from ..models import create_model, get_model_info
    from ..train import TrainConfig, fit
    from ..utils import set_seed

    if threads:
        torch.set_num_threads(threads)
    optuna = _optuna()
    info = get_model_info(model)
    dataset = load_dataset(dataset_name, **data_options)
    base_width = model_args.get(info.width) or info.hyperparameters()[info.width]
    if base_width is None:  # the MLP picks its width by task (models/mlp.py)
        from ..models.mlp import PER_STEP_WIDTH, WIDTH

        base_width = PER_STEP_WIDTH if dataset.meta.task == "per_step" else WIDTH

    def objective(trial) -> float:
        args = dict(model_args)
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        if tune_width:
            low = max(1, base_width // WIDTH_FACTOR)
            args[info.width] = trial.suggest_int(info.width, low, max(low + 1, base_width * WIDTH_FACTOR), log=True)
        config = replace(TrainConfig(**train), lr=lr, seed=0).validate()
        set_seed(0)
        result = fit(create_model(model, dataset.meta, **args), dataset, config)
        val = result.metrics["val_loss"]
        return val if math.isfinite(val) else float("inf")

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=trials)
    return {**study.best_params, "val_loss": study.best_value, "trials": trials}

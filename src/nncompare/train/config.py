"""TrainConfig: the one source of training options (the CLI's options and the estimators' keywords
come from its fields), with the values each option takes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import UserError

SCHEDULES = ("constant", "cosine", "onecycle")
VALIDATION = ("auto", "split", "none")  # auto: "none" below 1000 labelled training examples, else "split" (train/protocol.py)
SEMI_METHODS = ("none", "pseudo", "meanteacher")  # with labels: supervised only, pseudo-labelling, a mean teacher (train/semi.py)


# validation="none", the protocol of Wang et al. 2017 (FCN) and Fawaz et al. 2019 (dl-4-tsc): the learning
# rate is halved after PLATEAU_PATIENCE epochs without a lower training loss, down to MIN_LR_FRACTION of
# the set rate (dl-4-tsc: factor 0.5, patience 50, from 1e-3 down to 1e-4)
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 50


MIN_LR_FRACTION = 0.1


@dataclass
class TrainConfig:
    lr: float | None = None  # Adam step size; None: each model's recommended rate (`nncompare models`)
    batch_size: int = 128  # examples per step
    max_epochs: int | None = None  # most passes over the training split; None: 40, more on small data (epoch_budget)
    max_seconds: float | None = None  # wall-clock budget per run (None: no limit); checked after each epoch
    patience: int | None = None  # stop after this many epochs without a lower validation loss; None: 10, scaled likewise
    clip: float = 1.0  # max global gradient norm (0 turns clipping off); keeps recurrent nets stable
    weight_decay: float = 0.0  # L2 penalty inside Adam (off by default: a bell or whistle)
    schedule: str = "constant"  # learning rate over the run: constant, cosine (to 0 at the last step) or onecycle
    augment: bool = False  # light per-kind augmentation of training batches (train/augment.py); classification only
    labels: int | None = None  # keep this many labelled training examples, the rest unlabelled (train/semi.py)
    semi: str = "none"  # with labels: none (supervised only), pseudo (pseudo-labelling) or meanteacher
    refit: bool = False  # after early stopping, retrain from the same start on train+val for the best epoch count
    validation: str = "auto"  # auto: decided by the data (train/protocol.py); split: early stopping on the validation split; none: train on train+val for max_epochs,
    # halve the rate when the training loss plateaus (patience: PLATEAU_PATIENCE unless set), keep the lowest-training-loss weights
    seed: int = 0  # initial weights and the shuffling order
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ...; results on CPU are bit-for-bit repeatable

    def validate(self) -> "TrainConfig":
        def bad(name, what):
            raise UserError(f"{name} must be {what}, got {getattr(self, name)!r}")

        if self.lr is not None and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            bad("lr", "a positive number such as 0.003")
        for name, optional in (("batch_size", False), ("max_epochs", True), ("patience", True)):
            v = getattr(self, name)
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(name, "a positive whole number")
        if self.max_seconds is not None and not (self.max_seconds > 0):
            bad("max_seconds", "a positive number of seconds")
        if not (self.clip >= 0):
            bad("clip", "0 (off) or a positive gradient norm")
        if not (self.weight_decay >= 0):
            bad("weight_decay", "0 or a positive number")
        if self.schedule not in SCHEDULES:
            bad("schedule", "one of " + ", ".join(SCHEDULES))
        if self.semi not in SEMI_METHODS:
            bad("semi", "one of " + ", ".join(SEMI_METHODS))
        if self.validation not in VALIDATION:
            bad("validation", "one of " + ", ".join(VALIDATION))
        if self.validation == "none":
            # without a validation split there is no epoch count to refit for, no labelled subset is
            # scored against held-out data, and the rate already follows the training loss
            if self.refit:
                raise UserError("validation='none' and refit=True cannot be combined: validation='none' already trains on train+val; use one of the two")
            if self.labels is not None:
                raise UserError("validation='none' and labels cannot be combined: semi-supervised training stops early on the validation split")
            if self.schedule != "constant":
                raise UserError(f"validation='none' halves the learning rate when the training loss plateaus; it cannot be combined with schedule={self.schedule!r}")
        if self.semi != "none" and self.labels is None:
            raise UserError(f"semi={self.semi!r} needs labels=N: how many training examples keep their labels")
        if self.labels is not None and (isinstance(self.labels, bool) or not isinstance(self.labels, int) or self.labels < 1):
            bad("labels", "a positive whole number of labelled examples")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            bad("seed", "a non-negative whole number")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

"""TrainConfig: the one source of training options (the CLI's options and the estimators' keywords
come from its fields), with the values each option takes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

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


# validation="none" on a classification task: a run stops at the end of the first epoch whose mean
# training cross-entropy is below FITTED_LOSS (NoValidation.done). The training data is then fitted
# (the right class's probability about 0.9999 on average); the epochs left would mostly grow the
# weights, at the same cost each. Measured: benchmarks/fitted.py, docs/benchmarks.md.
FITTED_LOSS = 1e-4


def _option(default, help: str, *, name: str | None = None, parse: str | None = None, choices=None, metavar: str | None = None, shorthand=None):
    """A TrainConfig field with its user-facing description, the one the CLI's options and the
    estimators' keywords are made from (cli/options.py, estimator.py):

    help: the CLI's help text (argparse's %(default)s may appear in it);
    name: the name a user types where it differs from the field: the CLI flag --NAME, the estimator
        keyword NAME (max_epochs is --epochs and epochs=);
    parse: how the CLI reads a value: "positive int", "positive float", "non-negative float" or
        "int" (none: a string, or `choices`); a bool field is an on/off flag;
    shorthand: (flag, value, help): a flag that sets this field to `value` (--no-validation).
    """
    option = {"help": help, "name": name, "parse": parse, "choices": choices, "metavar": metavar, "shorthand": shorthand}
    return field(default=default, metadata={"option": option})


@dataclass
class TrainConfig:
    # Adam step size; None: each model's recommended rate (`nncompare models`)
    lr: float | None = _option(None, "Adam learning rate for every model (default: each model's recommended rate, see 'nncompare models')", parse="positive float")
    batch_size: int = _option(128, "most examples per step; an epoch is cut into batches of equal size (default: %(default)s)", parse="positive int")
    # most passes over the training split; None: 40, more on small data (epoch_budget)
    max_epochs: int | None = _option(None, "most epochs per run (default: 40, more on a small data set so a run has at least 1000 steps)", name="epochs", parse="positive int")
    # wall-clock budget per run (None: no limit); checked after each epoch
    max_seconds: float | None = _option(None, "wall-clock budget per run in seconds (default: none)", parse="positive float")
    # stop after this many epochs without a lower validation loss; None: 10, scaled likewise
    patience: int | None = _option(None, "early-stopping patience in epochs (default: 10, scaled with the default epochs)", parse="positive int")
    # max global gradient norm (0 turns clipping off); keeps recurrent nets stable
    clip: float = _option(1.0, "largest gradient norm per step, 0 for no clipping (default: %(default)g)", parse="non-negative float")
    # L2 penalty inside Adam (off by default: a bell or whistle)
    weight_decay: float = _option(0.0, "L2 penalty inside Adam (default: 0, off)", parse="non-negative float")
    # learning rate over the run: constant, cosine (to 0 at the last step) or onecycle
    schedule: str = _option("constant", "learning rate over each run: constant, cosine (down to 0 at the last planned step) or onecycle (default: constant)", choices=SCHEDULES)
    # light per-kind augmentation of training batches (train/augment.py); classification only
    augment: bool = _option(False, "light augmentation of training batches: series shifted, scaled and noised; images shifted by a few pixels (classification only)")
    # keep this many labelled training examples, the rest unlabelled (train/semi.py)
    labels: int | None = _option(None, "keep N labelled training examples (stratified, the same for every run) and treat the rest as unlabelled", parse="positive int", metavar="N")
    # with labels: none (supervised only), pseudo (pseudo-labelling) or meanteacher
    semi: str = _option("none", "with --labels: use the unlabelled examples by pseudo-labelling or a mean teacher; the table then also shows supervised-only (default: none)", choices=SEMI_METHODS)
    # after early stopping, retrain from the same start on train+val for the best epoch count
    refit: bool = _option(False, "after early stopping picks the epoch count on the validation split, retrain on train+val for that many epochs and test that model (for small data sets; about doubles the time)")
    # auto: decided by the data (train/protocol.py); split: early stopping on the validation split; none: train on train+val for max_epochs,
    # halve the rate when the training loss plateaus (patience: PLATEAU_PATIENCE unless set), keep the lowest-training-loss weights
    # (their batch-norm statistics recomputed over the training data: NoValidation.kept_state)
    validation: str = _option(
        "auto",
        "auto (default): no validation split below 1000 labelled training examples (see --no-validation), else split; split: hold a fifth of the training data out for early stopping; none: as --no-validation",
        choices=VALIDATION,
        shorthand=("--no-validation", "none", "for small data sets (the protocol of FCN and dl-4-tsc): no validation split; train on train+val for --epochs, halve the learning rate after --patience epochs (default 50) without a lower training loss, keep the weights of the lowest training loss (batch-norm statistics recomputed for them)"),
    )
    # validation="none", classification: stop once an epoch's mean training loss is below this (0: never)
    fitted_loss: float = _option(
        FITTED_LOSS,
        "without a validation split (small data sets, --no-validation), classification: stop a run once an epoch's mean training loss is below this, the training data fitted (default: %(default)g; 0 trains every epoch)",
        parse="non-negative float",
    )
    # initial weights and the shuffling order
    seed: int = _option(0, "initial weights and shuffling (default: 0)", parse="int")
    # "cpu", "cuda", "cuda:1", ...; results on CPU are bit-for-bit repeatable
    device: str = _option("cpu", "cpu, cuda or cuda:N (default: cpu)")

    def validate(self) -> TrainConfig:
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
        if isinstance(self.fitted_loss, bool) or not isinstance(self.fitted_loss, (int, float)) or not (0 <= self.fitted_loss < math.inf):
            bad("fitted_loss", "0 (off) or a positive training loss such as 0.001")
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


def train_options() -> dict[str, dict]:
    """Each TrainConfig field's user-facing description (see `_option`), by field name, in field order."""
    return {f.name: f.metadata["option"] for f in fields(TrainConfig)}


def option_name(name: str) -> str:
    """The name a user types for field `name`: its CLI flag without the dashes (with - for _), its
    estimator keyword; the field's own name unless the field says otherwise (max_epochs: epochs)."""
    return train_options()[name]["name"] or name

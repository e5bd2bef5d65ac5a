"""The one epoch loop. Every way of training is a `Strategy` of it: supervised (with refit), without a
validation split, semi-supervised (train/semi.py), text read as streams (train/streams.py), and
distributed (runs/distributed.py).

`run_epochs` owns what they share: the device, the epoch budget, Adam and its schedule, early stopping
with the best weights kept, the divergence check, checkpoints at epoch ends and their resumption, the
per-epoch callback, the refit phase and the test. A strategy says what varies: the training data on
the device, one epoch of batches, what is validated, which module is kept, what a refit trains on,
and what its metrics add."""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn as nn

from ..errors import UserError
from .checkpoint import Checkpointer, LoopState, Resumed
from .config import MIN_LR_FRACTION, PLATEAU_FACTOR, PLATEAU_PATIENCE, TrainConfig
from .steps import (
    EpochCallback,
    Objective,
    RunResult,
    Stopper,
    all_labelled,
    batch_norm_statistics,
    divergence,
    epoch_budget,
    evaluate,
    final_metrics,
    loop_generators,
    make_augmenter,
    make_optimizer,
    resolve_device,
    train_epoch,
    trivial_loss,
)


class Strategy:
    """The parts of one way of training that vary. `run_epochs` calls, in this order:

    prepare(device) -> steps      put the training data on the device; optimizer steps per epoch
    start(optimizer, scheduler, max_epochs)   take the optimizer and per-step schedule it made
    train_epoch(epoch, deadline)  one epoch of batches -> the history row's training columns
                                  (train_loss first); `deadline` (time.perf_counter) may end it early
    validate()                    the row's validation columns ({} without validation: then the
                                  training loss is the monitored value)
    done(row)                     a reason of its own to stop after this epoch (NoValidation: "fitted"), or None
    agree(reason)                 the stop reason every process follows (distributed training)
    kept_state(stopper)           the weights tested when there is no refit (the stopper's best)
    for_refit()                   the same training on train+val from the initial weights
    finish(metrics, stopper)      what this way of training adds to the metrics
    """

    early_stopping = True  # False: the monitored value only chooses the weights kept, never ends the run
    resumable = True  # False: a checkpoint is neither saved nor resumed
    measures = True  # False: this process does not test the model (distributed processes other than 0)

    def __init__(self, model: nn.Module, dataset, config: TrainConfig):
        self.model, self.dataset, self.config = model, dataset, config
        self.objective = Objective(dataset.meta.task, dataset.meta.kind)
        self.trivial: float | None = None  # the loss of a predictor that knows nothing (the divergence scale); set by prepare
        self.optimizer = self.scheduler = None
        self.extra: dict = {}  # small values a checkpoint keeps (LoopState.extra): the same dict, restored in place

    @property
    def kept(self) -> nn.Module:
        """The module validated and kept (its best weights are loaded into `model` and tested)."""
        return self.model

    @property
    def saved_scheduler(self):
        """The learning-rate scheduler a checkpoint saves."""
        return self.scheduler

    def prepare(self, device: torch.device) -> int:
        raise NotImplementedError

    def start(self, optimizer, scheduler, max_epochs: int) -> None:
        self.optimizer, self.scheduler = optimizer, scheduler

    def train_epoch(self, epoch: int, deadline: float | None) -> dict:
        raise NotImplementedError

    def validate(self) -> dict:
        return {}

    def generators(self) -> dict[str, torch.Generator]:
        """The random generators the strategy draws from besides torch's global one (checkpointed)."""
        return {}

    def modules(self) -> dict[str, dict]:
        """Further state dicts a checkpoint saves and restores in place (the initial weights for refit)."""
        return {}

    def done(self, row: dict) -> str | None:
        return None

    def agree(self, reason: str | None) -> str | None:
        return reason

    def kept_state(self, stopper: Stopper) -> dict:
        """The state dict tested when no refit follows: by default the stopper's best weights."""
        return stopper.best_state

    def for_refit(self) -> Strategy:
        raise UserError(f"refit is not available for {type(self).__name__} training")

    def finish(self, metrics: dict, stopper: Stopper) -> None:
        pass


def run_epochs(strategy: Strategy, on_epoch: EpochCallback | None = None, checkpoint: Checkpointer | None = None) -> RunResult:
    """Train `strategy.model` epoch after epoch and test it: the one training loop.

    The budget is `epoch_budget`'s; Adam and the schedule are `make_optimizer`'s over it. After each
    epoch the row goes to the history and `on_epoch`; a run stops when it diverges, when the monitored
    value (validation loss, or the training loss without validation) has not fallen for `patience`
    epochs, when `max_seconds` have passed, or when it has stalled (`stalled`); with `checkpoint` the loop's state is saved and a found
    checkpoint resumed. The kept module's best weights are then loaded into the model, or, with
    `config.refit`, the model is trained again from its initial weights for the best epoch count on
    train+val (rows with phase "refit"), and it is tested (`final_metrics`)."""
    config = strategy.config
    if config.lr is None:
        raise ValueError("training needs a learning rate (lr is None); nncompare.runs.runner.config_for_model fills in the model's recommended rate")
    if not strategy.resumable:
        checkpoint = None
    device = resolve_device(config.device)
    model = strategy.model.to(device)
    steps = strategy.prepare(device)
    max_epochs, patience = epoch_budget(config, steps_per_epoch=steps)
    strategy.start(*make_optimizer(model, config, max_epochs * steps), max_epochs)
    stopper = Stopper(strategy.kept, patience if strategy.early_stopping else max_epochs + 1, config.max_seconds)
    loop = LoopState(model, strategy.optimizer, strategy.saved_scheduler, stopper, strategy.generators(), strategy.modules(), strategy.extra)
    resumed = checkpoint.resume(loop) if checkpoint is not None else Resumed()
    history = resumed.history
    deadline = None if config.max_seconds is None else stopper.start + config.max_seconds
    epochs = range(resumed.first_epoch, max_epochs + 1) if not resumed.stop_reason else range(0)  # stopped: straight to the test
    reason, why_diverged = _train_epochs(strategy, epochs, history, on_epoch, strategy.trivial, stopper, checkpoint, loop, deadline, steps=steps)
    stop_reason = reason or resumed.stop_reason or "max_epochs"
    best_epoch, best_state, refit_epochs = stopper.best_epoch, strategy.kept_state(stopper), 0
    if config.refit and stop_reason != "diverged" and best_epoch:
        # the validation split chose how long to train; now train on every labelled example for that
        # long, from the same initial weights, with the same seeds. The test split is still untouched,
        # and the validation scores stay those of the selection phase.
        refit_epochs, refit = best_epoch, strategy.for_refit()
        refit_steps = refit.prepare(device)
        refit.start(*make_optimizer(model, config, refit_epochs * refit_steps), refit_epochs)
        first = len(history) + 1
        reason, why = _train_epochs(refit, range(first, first + refit_epochs), history, on_epoch, strategy.trivial, phase="refit", steps=refit_steps)
        if reason:
            stop_reason, why_diverged = reason, why
        best_state = model.state_dict()
    train_seconds = time.perf_counter() - stopper.start
    model.load_state_dict(best_state)
    if not strategy.measures:
        return RunResult(history=history, metrics=None, config=config)
    metrics = final_metrics(model, strategy.dataset, strategy.objective, history, best_epoch, max_epochs, stop_reason, train_seconds)
    metrics["refit_epochs"] = refit_epochs  # 0: no refit (the kept weights were tested)
    strategy.finish(metrics, stopper)
    if stop_reason == "diverged":
        last = history[-1]
        metrics["diverged"] = why_diverged or divergence(last["train_loss"], last.get("val_loss", 0.0), strategy.trivial, len(history))
    return RunResult(history=history, metrics=metrics, config=config)


STALL_EPOCHS = 10  # this many epochs in a row with every optimizer step skipped: the run has stalled


def stalled(history: list[dict], steps: int | None, phase: str | None = None) -> bool:
    """Whether every optimizer step of the last STALL_EPOCHS epochs of `phase` was skipped (a gradient
    that was not finite: steps.optimizer_step). The weights have not changed since; full-batch
    training on a fixed set would repeat the same overflow for every epoch left (the default GRU on a
    1460-step series did for 675 epochs), so the run stops with its best weights kept. Counted from
    the history, it holds across a resumed checkpoint."""
    rows = [row for row in history if row.get("phase") == phase][-STALL_EPOCHS:]
    return bool(steps) and len(rows) == STALL_EPOCHS and all(row.get("skipped_steps", 0) >= steps for row in rows)


def _train_epochs(strategy: Strategy, epochs: range, history: list[dict], on_epoch, trivial: float, stopper: Stopper | None = None, checkpoint=None, loop=None, deadline=None, phase: str | None = None, steps: int | None = None) -> tuple[str | None, str | None]:
    """Train the numbered `epochs`, a row each; (the reason the loop stopped or None, why it diverged
    or None). `steps` (optimizer steps per epoch) lets a stalled run stop (`stalled`)."""
    for epoch in epochs:
        epoch_start = time.perf_counter()
        row = {"epoch": epoch, **({"phase": phase} if phase else {})}
        row.update(strategy.train_epoch(epoch, deadline))
        row.update(strategy.validate())
        row["seconds"] = time.perf_counter() - epoch_start
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        monitored = row.get("val_loss", row["train_loss"])
        why_diverged = divergence(row["train_loss"], row.get("val_loss", 0.0), trivial, epoch)
        reason = "diverged" if why_diverged else stopper.after_epoch(epoch, monitored, strategy.kept) if stopper is not None else None
        if reason is None and stalled(history, steps, phase):
            reason = "stalled"
        if reason is None and stopper is not None:
            reason = strategy.done(row)
        reason = strategy.agree(reason)
        if checkpoint is not None:
            checkpoint.save_epoch(loop, epoch, history, reason)
        if reason:
            return reason, why_diverged
    return None, None


class Supervised(Strategy):
    """Mini-batches of labelled examples in a shuffled order (seeded: the same order on every device),
    optionally augmented, validated on the validation split: `fit`'s default. With `validation=False`
    nothing is validated (the refit phase, and `NoValidation`)."""

    def __init__(self, model: nn.Module, dataset, config: TrainConfig, x=None, y=None, lengths=None, validation: bool = True):
        super().__init__(model, dataset, config)
        train = dataset.train
        self.data = (train.x, train.y, train.lengths) if x is None else (x, y, lengths)
        self.validation, self.initial = validation, None

    def prepare(self, device) -> int:
        x, y, lengths = self.data
        self.x, self.y = x.to(device), y.to(device)
        self.lengths = None if lengths is None else lengths.to(device)
        self.n = len(self.y)
        if self.n == 0:
            raise UserError("the training split is empty; the data set needs at least one training example")
        self.batch_size = min(self.config.batch_size, self.n)
        self.shuffle = torch.Generator().manual_seed(self.config.seed)
        self.augmenter = make_augmenter(self.dataset.meta, self.config)
        self.trivial = trivial_loss(self.objective, self.dataset.meta.n_classes, self.y)
        if self.config.refit and self.validation:
            self.initial = copy.deepcopy(self.model.state_dict())  # where the refit phase starts again
        return math.ceil(self.n / self.batch_size)

    def train_on(self, x, y, lengths) -> tuple[float, int, int]:
        """One shuffled pass over (x, y): (mean training loss, right predictions, skipped steps)."""
        return train_epoch(self.model, self.optimizer, self.objective, self.config, x, y, lengths, self.batch_size, self.shuffle, self.scheduler, self.augmenter)

    def training_columns(self, loss: float, correct: int, n: int, skipped: int = 0) -> dict:
        row = {"train_loss": loss}
        if self.objective.has_accuracy:
            row["train_acc"] = correct / (n * self.objective.predictions_per_example(self.y))
        if skipped:
            row["skipped_steps"] = skipped  # a column only where an epoch skipped a step
        return row

    def train_epoch(self, epoch, deadline) -> dict:
        loss, correct, skipped = self.train_on(self.x, self.y, self.lengths)
        return self.training_columns(loss, correct, self.n, skipped)

    def validate(self) -> dict:
        if not self.validation:
            return {}
        val = self.dataset.val
        loss, acc = evaluate(self.kept, val.x, val.y, val.lengths, objective=self.objective)
        return {"val_loss": loss, **({"val_acc": acc} if self.objective.has_accuracy else {})}

    def generators(self):
        return loop_generators(self.shuffle, self.augmenter)

    def modules(self):
        return {"initial": self.initial} if self.initial is not None else {}

    def for_refit(self) -> Supervised:
        self.model.load_state_dict(self.initial)
        return Supervised(self.model, self.dataset, self.config, *all_labelled(self.dataset, self.x.device), validation=False)


class NoValidation(Supervised):
    """validation="none", the protocol of FCN (Wang et al. 2017) and dl-4-tsc (Fawaz et al. 2019) for
    small data sets, where a validation split would take a large share of the few labelled examples
    and its early stopping is noise.

    Trains on train+val together for max_epochs; after `patience` epochs (PLATEAU_PATIENCE unless set)
    without a lower training loss the learning rate is multiplied by PLATEAU_FACTOR, down to
    MIN_LR_FRACTION of the set rate (torch's ReduceLROnPlateau on the epoch's mean training loss); the
    weights of the epoch with the lowest training loss are kept and tested, with their batch-norm
    statistics recomputed over the training data (`batch_norm_statistics`): the moving averages
    training leaves belong to the weights of the last epochs, not to the kept ones. A classification
    run stops once an epoch's mean training loss is below `config.fitted_loss` (stop reason "fitted",
    `done`): the training data is fitted, and the epochs left would mostly grow the weights. Otherwise
    only max_seconds ends a run early. History rows carry the epoch's learning rate and no validation
    columns."""

    early_stopping = False

    def __init__(self, model: nn.Module, dataset, config: TrainConfig):
        super().__init__(model, dataset, config, *all_labelled(dataset, "cpu"), validation=False)
        self.recomputed = 0  # batch norms whose statistics kept_state recomputed

    def start(self, optimizer, scheduler, max_epochs):
        # the schedule is "constant" (TrainConfig.validate): no per-step scheduler, a per-epoch one
        patience = self.config.patience if self.config.patience is not None else PLATEAU_PATIENCE
        super().start(optimizer, None, max_epochs)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=PLATEAU_FACTOR, patience=patience, min_lr=self.config.lr * MIN_LR_FRACTION)

    @property
    def saved_scheduler(self):
        return self.plateau

    def train_epoch(self, epoch, deadline) -> dict:
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        row = super().train_epoch(epoch, deadline)
        self.plateau.step(row["train_loss"])
        row["lr"] = lr
        return row

    def done(self, row):
        fitted = self.objective.has_accuracy and self.config.fitted_loss > 0 and row["train_loss"] < self.config.fitted_loss
        return "fitted" if fitted else None

    def kept_state(self, stopper):
        self.model.load_state_dict(stopper.best_state)
        self.recomputed = batch_norm_statistics(self.model, self.x, self.lengths, self.batch_size)
        return copy.deepcopy(self.model.state_dict())

    def finish(self, metrics, stopper):
        metrics.update(validation="none", best_train_loss=stopper.best_loss, batch_norm_recomputed=self.recomputed)

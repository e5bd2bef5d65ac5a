"""The plain training loop: Adam on mini-batches sliced from in-memory tensors, early stopping on
validation loss with the best weights restored. No framework: on a 5k-parameter model the per-step
overhead of one is a large share of the step (DESIGN.md)."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .checkpoint import Checkpointer, LoopState, raise_if_stopped


SCHEDULES = ("constant", "cosine", "onecycle")
VALIDATION = ("split", "none")
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
    validation: str = "split"  # split: early stopping on the validation split; none: train on train+val for max_epochs,
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
        from .semi import SEMI_METHODS

        if self.semi not in SEMI_METHODS:
            bad("semi", "one of " + ", ".join(SEMI_METHODS))
        if self.validation not in VALIDATION:
            bad("validation", "one of " + ", ".join(VALIDATION))
        if self.validation == "none":
            # without a validation split there is no epoch count to refit for, no labelled subset is
            # scored against held-out data, and the rate already follows the training loss
            if self.refit:
                raise UserError("--no-validation and --refit cannot be combined: --no-validation already trains on train+val; use one of the two")
            if self.labels is not None:
                raise UserError("--no-validation and --labels cannot be combined: semi-supervised training stops early on the validation split")
            if self.schedule != "constant":
                raise UserError(f"--no-validation halves the learning rate when the training loss plateaus; it cannot be combined with --schedule {self.schedule}")
        if self.semi != "none" and self.labels is None:
            raise UserError(f"--semi {self.semi} needs --labels N: how many training examples keep their labels")
        if self.labels is not None and (isinstance(self.labels, bool) or not isinstance(self.labels, int) or self.labels < 1):
            bad("labels", "a positive whole number of labelled examples")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            bad("seed", "a non-negative whole number")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunResult:
    history: list[dict]  # one row per epoch: epoch, train_loss, train_acc, val_loss, val_acc, seconds (no acc for regression)
    metrics: dict  # test metrics, cost, stopping details
    config: TrainConfig = field(repr=False, default=None)


def resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{device}' asked for but no CUDA GPU is available; use --device cpu")
    return dev


@dataclass(frozen=True)
class Objective:
    """What a task is trained and scored on.

    classify: cross-entropy, accuracy; outputs (B, K), targets (B,) class ids.
    regress:  mean squared error (the loss is the score); outputs (B, D), targets (B,) or (B, D).
    per_step: cross-entropy over every position, accuracy over positions; outputs (B, T, K), targets (B, T).
    """

    task: str
    kind: str = "series"  # text scores in bits per character

    @property
    def has_accuracy(self) -> bool:
        return self.task != "regress"

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "regress":
            return F.mse_loss(out.reshape(y.shape), y)
        if self.task == "per_step":
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))  # (B*T, K) vs (B*T,)
        return F.cross_entropy(out, y)

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Number of right predictions (0 for regression, which has none to count)."""
        if self.task == "regress":
            return torch.zeros((), dtype=torch.long, device=out.device)
        return (out.argmax(-1) == y).sum()

    def predictions_per_example(self, y: torch.Tensor) -> int:
        return y[0].numel() if self.task == "per_step" and len(y) else 1

    def score(self, loss: float, acc: float | None) -> tuple[str, float, bool]:
        """(name, value, higher is better) of the number a comparison ranks models by."""
        if self.task == "regress":
            return "test MSE", loss, False
        if self.kind == "text":
            return "test bits/char", loss / math.log(2), False  # cross-entropy in nats -> bits
        if self.task == "per_step":
            # accuracy over positions is dominated by easy ones (the copy task's blanks): rank by the
            # mean cross-entropy per position, as Bai et al. 2018 report it
            return "test loss", loss, False
        return "test accuracy", acc, True


def run_model(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The model's outputs for a batch; `lengths` (padded series) only when the data has them."""
    return model(x) if lengths is None else model(x, lengths)


def _rows(t: torch.Tensor | None, start: int, stop: int, device) -> torch.Tensor | None:
    return None if t is None else t[start:stop].to(device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lengths: torch.Tensor | None = None,
    batch_size: int = 1024,
    objective: Objective = Objective("classify"),
) -> tuple[float, float | None]:
    """(mean loss, accuracy) over a split, in eval mode, in batches; accuracy None for regression."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        out = run_model(model, xb, _rows(lengths, i, i + batch_size, device))
        loss, right = objective.loss(out, yb), objective.correct(out, yb)
        total_loss += loss.item() * len(yb)
        correct += int(right)
    n = max(len(y), 1)
    acc = correct / (n * objective.predictions_per_example(y)) if objective.has_accuracy else None
    return total_loss / n, acc


@torch.no_grad()
def inference_throughput(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None, batch_size: int = 256, min_seconds: float = 0.2) -> float:
    """Examples per second of `model` in eval mode on `x`, batches of `batch_size`, after one warm-up batch."""
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    lengths = None if lengths is None else lengths.to(device)
    run_model(model, x[:batch_size], _rows(lengths, 0, batch_size, device))  # warm-up (allocations, lazy init)
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(x), batch_size):
            run_model(model, x[i : i + batch_size], _rows(lengths, i, i + batch_size, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        done += len(x)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


EpochCallback = Callable[[dict], None]


DEFAULT_EPOCHS = 40
DEFAULT_PATIENCE = 10
MIN_DEFAULT_STEPS = 1000


def epoch_budget(config: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(max epochs, patience) for a training split of `steps_per_epoch` batches.

    Values the user set are used as they are. The defaults are 40 epochs and a patience of 10; on a
    small data set 40 epochs can be 40 optimizer steps (a UCR set of 40 series is one batch), which
    trains nothing, so both defaults are multiplied by the smallest factor that gives at least 1000
    steps. On MNIST-1D (29 steps an epoch) the factor is 1.
    """
    scale = max(1, math.ceil(MIN_DEFAULT_STEPS / (DEFAULT_EPOCHS * steps_per_epoch)))
    max_epochs = config.max_epochs if config.max_epochs is not None else DEFAULT_EPOCHS * scale
    if config.patience is not None:
        patience = config.patience
    else:
        patience = DEFAULT_PATIENCE * (scale if config.max_epochs is None else 1)
    return max_epochs, patience


def make_optimizer(model: nn.Module, config: TrainConfig, total_steps: int):
    """Adam, and the learning-rate schedule stepped once per batch over `total_steps` (None: constant).

    cosine: from the set rate down to 0 at the last planned step (Loshchilov & Hutter 2017, no
    restarts); onecycle: up from rate/25 to the set rate over the first 30% of the steps, then down to
    rate/1e4 (Smith & Topin 2018, torch's OneCycleLR defaults). Early stopping may end a run before the
    schedule does."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = max(1, total_steps)
    if config.schedule == "cosine":
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if config.schedule == "onecycle":
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    return optimizer, None


def _augmenter(meta, config: TrainConfig):
    """The batch augmentation of this run (None when off), with its own generator seeded from the run's seed."""
    if not config.augment:
        return None
    from .augment import augment, check_augmentable

    check_augmentable(meta)
    generator = torch.Generator().manual_seed(config.seed + 1_000_003)  # apart from the shuffling stream
    fn = lambda x, lengths: augment(x, meta.kind, generator, lengths)  # noqa: E731
    fn.generator = generator  # a checkpoint saves its state (checkpoint.py)
    return fn


def optimizer_step(model, optimizer, scheduler, config: TrainConfig, loss: torch.Tensor) -> None:
    """Back-propagate `loss`, clip the gradient norm (unless clip is 0), step Adam and the schedule."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


def _train_epoch(model, optimizer, objective, config, x, y, lengths, batch_size, shuffle, scheduler=None, augmenter=None) -> tuple[float, int]:
    """One pass over (x, y) in a shuffled order; (mean training loss, number of right predictions)."""
    model.train()
    n, device = len(y), x.device
    order = torch.randperm(n, generator=shuffle).to(device)  # same order on every device
    loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        xb, lb = x[idx], None if lengths is None else lengths[idx]
        if augmenter is not None:
            xb = augmenter(xb, lb)
        out = run_model(model, xb, lb)
        loss, right = objective.loss(out, y[idx]), objective.correct(out, y[idx])
        optimizer_step(model, optimizer, scheduler, config, loss)
        raise_if_stopped()  # the first Ctrl-C: stop after this step (the last epoch-end checkpoint stays)
        loss_sum += loss.detach() * len(idx)  # summed on the device: no sync per step
        correct += right
    return loss_sum.item() / n, int(correct.item())


class Stopper:
    """Early stopping on validation loss, keeping a copy of the best weights, and the wall-clock budget."""

    def __init__(self, model: nn.Module, patience: int, max_seconds: float | None):
        self.best_loss, self.best_epoch, self.best_state = math.inf, 0, copy.deepcopy(model.state_dict())
        self.patience, self.max_seconds, self.start = patience, max_seconds, time.perf_counter()

    def after_epoch(self, epoch: int, val_loss: float, model: nn.Module) -> str | None:
        """Record the epoch; the reason to stop now ("early_stopping", "max_seconds") or None."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        elif epoch - self.best_epoch >= self.patience:
            return "early_stopping"
        if self.max_seconds is not None and time.perf_counter() - self.start >= self.max_seconds:
            return "max_seconds"
        return None


def final_metrics(model, dataset, objective: Objective, history: list[dict], best_epoch: int, max_epochs: int, stop_reason: str, train_seconds: float) -> dict:
    """Test the model as it now is (the kept weights) and gather a run's metrics."""
    test_loss, test_acc = evaluate(model, dataset.test.x, dataset.test.y, dataset.test.lengths, objective=objective)
    best = history[best_epoch - 1] if best_epoch else history[-1]  # selection rows come first
    score_name, score, higher_is_better = objective.score(test_loss, test_acc)
    return {
        "task": objective.task,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "score": score,
        "score_name": score_name,
        "higher_is_better": higher_is_better,
        "val_loss": best.get("val_loss"),  # None without a validation split (validation="none")
        "val_acc": best.get("val_acc"),
        "best_epoch": best_epoch,
        "epochs": len(history),
        "max_epochs": max_epochs,
        "stop_reason": stop_reason,
        "train_seconds": train_seconds,
        "inference_per_second": inference_throughput(model, dataset.test.x, dataset.test.lengths),
    }


def loop_generators(shuffle: torch.Generator, augmenter) -> dict[str, torch.Generator]:
    """The generators a training loop draws from besides torch's global one, by name (for checkpoints)."""
    return {"shuffle": shuffle, **({"augment": augmenter.generator} if augmenter is not None else {})}


DIVERGED_FACTOR = 1e4  # a loss this many times the trivial predictor's has diverged


def trivial_loss(objective: Objective, n_classes: int, y_train: torch.Tensor) -> float:
    """The loss of a predictor that knows nothing: uniform class probabilities (ln K), or the mean
    of the targets for regression (their variance). A scale for what "exploded" means."""
    if objective.task == "regress":
        var = float(y_train.double().var()) if y_train.numel() > 1 else 0.0
        return var if var > 0 and math.isfinite(var) else 1.0
    return math.log(max(n_classes, 2))


def divergence(train_loss: float, val_loss: float, trivial: float, epoch: int) -> str | None:
    """Why the run has diverged after `epoch`, or None: a loss that is NaN or infinite, or that has
    exploded past DIVERGED_FACTOR times the trivial predictor's (a learning rate of 1e6 gives
    finite losses of 1e7 to 1e30, which no further epoch brings back)."""
    for name, loss in (("training", train_loss), ("validation", val_loss)):
        if not math.isfinite(loss):
            return f"{name} loss became {loss} in epoch {epoch}; a lower learning rate (--lr) or gradient clipping (--clip) may help"
    for name, loss in (("training", train_loss), ("validation", val_loss)):
        if loss > DIVERGED_FACTOR * trivial:
            return (
                f"{name} loss {loss:.3g} in epoch {epoch} is over {DIVERGED_FACTOR:,.0f} times that of a trivial predictor ({trivial:.3g}); "
                f"a lower learning rate (--lr) may help"
            )
    return None


def denormals_flushed() -> bool:
    """Whether this thread flushes denormal float32 numbers to zero (x86's FTZ/DAZ, `torch.set_flush_denormal`)."""
    return (torch.tensor([1e-39]) * 2.0).item() == 0.0


@contextlib.contextmanager
def flush_denormals(device: str):
    """Denormal numbers flushed to zero while a run trains on a CPU; the caller's setting restored after.

    Gradients fading back through a long sequence reach them, and on x86 each operation on one takes about
    a hundred times as long: measured, torch's fused LSTM trained 5.1x faster on adding:200 with them
    flushed (3 epochs, 78.2 s against 15.2 s) and its training step at 64 units over 200 steps 7.6x
    (benchmarks/recurrent.py), while on MNIST-1D all six models' weights came out bit for bit the same.
    The compiled LSTM loops (models/lstm_loop.c) flush them anyway. The setting is the calling thread's:
    runs in a comparison train on one thread each."""
    if resolve_device(device).type != "cpu":
        yield
        return
    for dtype in (np.float16, np.float32, np.float64):
        np.finfo(dtype)  # numpy measures its float limits once; with denormals flushed it would warn that none exist
    was = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was)


def fit(model: nn.Module, dataset, config: TrainConfig, on_epoch: EpochCallback | None = None, checkpoint: Checkpointer | None = None) -> RunResult:
    """Train `model` on `dataset.train`, early-stop on `dataset.val` loss, restore the best weights,
    then measure test loss/accuracy and inference speed. Returns the per-epoch history and metrics.

    Shuffling uses a CPU generator seeded from `config.seed`, so the batch order is the same on every
    device. The model's initial weights are the caller's business (see `nncompare.api.train`).
    With `config.refit`, the model is then trained again from those initial weights on train+val for
    the best epoch count, and that model is tested; with `config.labels`, training is semi-supervised
    (`train/semi.py`); next-character text is read as streams, recurrent state carried across chunks
    (`train/streams.py`); with `config.validation == "none"` there is no validation split
    (`fit_without_validation`).

    With `checkpoint`, the loop's whole state is saved at every epoch end and a run that finds a
    checkpoint goes on from it, giving the numbers an uninterrupted run gives (train/checkpoint.py).
    The --refit phase is not checkpointed per epoch: a run stopped in it trains that phase again from
    its start, which the last checkpoint holds. Text read as streams is not checkpointed: a stopped
    text run starts again. On a CPU, denormal numbers are flushed to zero while it trains (`flush_denormals`).
    """
    config.validate()
    with flush_denormals(config.device):
        return _fit(model, dataset, config, on_epoch, checkpoint)


def _fit(model: nn.Module, dataset, config: TrainConfig, on_epoch: EpochCallback | None, checkpoint: Checkpointer | None) -> RunResult:
    if config.lr is None:
        raise ValueError("fit needs a learning rate; nncompare.runner.config_for_model fills in the model's default")
    if config.labels is not None:
        from .semi import fit_semi

        return fit_semi(model, dataset, config, on_epoch, checkpoint)
    from .streams import fit_streams, streams_apply

    if streams_apply(dataset.meta, model):  # next-character text: read as streams (truncated BPTT)
        if config.validation == "none":
            raise UserError("--no-validation is not available for next-character text, which is read as streams; leave it out")
        return fit_streams(model, dataset, config, on_epoch)
    if config.validation == "none":
        return fit_without_validation(model, dataset, config, on_epoch, checkpoint)
    device = resolve_device(config.device)
    model.to(device)
    train, val = dataset.train, dataset.val
    x_train, y_train = train.x.to(device), train.y.to(device)
    len_train = None if train.lengths is None else train.lengths.to(device)
    n = len(y_train)
    if n == 0:
        raise UserError("the training split is empty; the data set needs at least one training example")
    batch_size = min(config.batch_size, n)
    objective = Objective(dataset.meta.task, dataset.meta.kind)
    per_example = objective.predictions_per_example(y_train)
    shuffle = torch.Generator().manual_seed(config.seed)
    augmenter = _augmenter(dataset.meta, config)

    initial_state = copy.deepcopy(model.state_dict()) if config.refit else None
    steps_per_epoch = math.ceil(n / batch_size)
    max_epochs, patience = epoch_budget(config, steps_per_epoch=steps_per_epoch)
    optimizer, scheduler = make_optimizer(model, config, max_epochs * steps_per_epoch)
    stopper = Stopper(model, patience, config.max_seconds)
    loop = LoopState(model, optimizer, scheduler, stopper, loop_generators(shuffle, augmenter), {"initial": initial_state} if config.refit else {})
    trivial = trivial_loss(objective, dataset.meta.n_classes, y_train)
    why_diverged = None
    resumed = checkpoint.resume(loop) if checkpoint is not None else None
    history: list[dict] = resumed.history if resumed else []
    first_epoch = resumed.first_epoch if resumed else 1
    if resumed and resumed.stop_reason:  # the checkpoint was taken after the loop had decided to stop
        first_epoch = max_epochs + 1
    stop_reason = (resumed.stop_reason if resumed else None) or "max_epochs"
    for epoch in range(first_epoch, max_epochs + 1):
        epoch_start = time.perf_counter()
        train_loss, correct = _train_epoch(model, optimizer, objective, config, x_train, y_train, len_train, batch_size, shuffle, scheduler, augmenter)
        val_loss, val_acc = evaluate(model, val.x, val.y, val.lengths, objective=objective)
        row = {"epoch": epoch, "train_loss": train_loss}
        if objective.has_accuracy:
            row["train_acc"] = correct / (n * per_example)
        row["val_loss"] = val_loss
        if objective.has_accuracy:
            row["val_acc"] = val_acc
        row["seconds"] = time.perf_counter() - epoch_start
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        why_diverged = divergence(train_loss, val_loss, trivial, epoch)
        reason = "diverged" if why_diverged else stopper.after_epoch(epoch, val_loss, model)
        if checkpoint is not None:
            checkpoint.save_epoch(loop, epoch, history, reason)
        if reason:
            stop_reason = reason
            break
    start = stopper.start
    best_epoch, best_state = stopper.best_epoch, stopper.best_state
    refit_epochs = 0
    if config.refit and stop_reason != "diverged" and best_epoch:
        # the validation split chose how long to train; now train on every labelled example for that
        # long, from the same initial weights and with the same shuffling seed. The test split is
        # still untouched, and validation scores below stay those of the selection phase.
        refit_epochs, refit_n = best_epoch, n + len(val.y)
        model.load_state_dict(initial_state)
        refit_batch = min(config.batch_size, refit_n)
        optimizer, scheduler = make_optimizer(model, config, refit_epochs * math.ceil(refit_n / refit_batch))
        shuffle = torch.Generator().manual_seed(config.seed)
        augmenter = _augmenter(dataset.meta, config)
        x_all = torch.cat([x_train, val.x.to(device)])
        y_all = torch.cat([y_train, val.y.to(device)])
        len_all = None if len_train is None else torch.cat([len_train, val.lengths.to(device)])
        for epoch in range(1, refit_epochs + 1):
            epoch_start = time.perf_counter()
            train_loss, correct = _train_epoch(model, optimizer, objective, config, x_all, y_all, len_all, refit_batch, shuffle, scheduler, augmenter)
            row = {"epoch": len(history) + 1, "phase": "refit", "train_loss": train_loss}
            if objective.has_accuracy:
                row["train_acc"] = correct / (refit_n * per_example)
            row["seconds"] = time.perf_counter() - epoch_start
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            why_diverged = divergence(train_loss, 0.0, trivial, row["epoch"])
            if why_diverged:
                stop_reason = "diverged"
                break
        best_state = model.state_dict()
    train_seconds = time.perf_counter() - start

    model.load_state_dict(best_state)
    metrics = final_metrics(model, dataset, objective, history, best_epoch, max_epochs, stop_reason, train_seconds)
    metrics["refit_epochs"] = refit_epochs  # 0: no refit (the best-validation weights were tested)
    if stop_reason == "diverged":
        metrics["diverged"] = why_diverged or divergence(history[-1]["train_loss"], history[-1].get("val_loss", 0.0), trivial, len(history))
    return RunResult(history=history, metrics=metrics, config=config)


def all_labelled(dataset, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x, y, lengths) of the training and validation splits together, on `device`."""
    train, val = dataset.train, dataset.val
    x = torch.cat([train.x, val.x]).to(device)
    y = torch.cat([train.y, val.y]).to(device)
    lengths = None if train.lengths is None else torch.cat([train.lengths, val.lengths]).to(device)
    return x, y, lengths


def fit_without_validation(model: nn.Module, dataset, config: TrainConfig, on_epoch: EpochCallback | None = None, checkpoint: Checkpointer | None = None) -> RunResult:
    """`fit` with `config.validation == "none"`: the protocol of FCN (Wang et al. 2017) and dl-4-tsc
    (Fawaz et al. 2019) for small data sets, where a validation split would take a large share of
    the few labelled examples and its early stopping is noise.

    Trains on train+val together for max_epochs; after `patience` epochs (PLATEAU_PATIENCE unless
    set) without a lower training loss the learning rate is multiplied by PLATEAU_FACTOR, down to
    MIN_LR_FRACTION of the set rate (torch's ReduceLROnPlateau on the epoch's mean training loss);
    the weights of the epoch with the lowest training loss are kept and tested. Only --max-seconds
    ends a run early. History rows carry the epoch's learning rate and no validation columns.
    Checkpointed like `fit`: a resumed run gives the numbers of an uninterrupted one.
    """
    device = resolve_device(config.device)
    model.to(device)
    x, y, lengths = all_labelled(dataset, device)
    n = len(y)
    if n == 0:
        raise UserError("the training split is empty; the data set needs at least one training example")
    batch_size = min(config.batch_size, n)
    objective = Objective(dataset.meta.task, dataset.meta.kind)
    per_example = objective.predictions_per_example(y)
    shuffle = torch.Generator().manual_seed(config.seed)
    augmenter = _augmenter(dataset.meta, config)
    max_epochs, _ = epoch_budget(config, steps_per_epoch=math.ceil(n / batch_size))
    plateau_patience = config.patience if config.patience is not None else PLATEAU_PATIENCE
    optimizer, _ = make_optimizer(model, config, 1)  # schedule is "constant" (validate): no per-step schedule
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=PLATEAU_FACTOR, patience=plateau_patience, min_lr=config.lr * MIN_LR_FRACTION)
    stopper = Stopper(model, patience=max_epochs + 1, max_seconds=config.max_seconds)  # keeps the lowest training loss; never stops early
    loop = LoopState(model, optimizer, plateau, stopper, loop_generators(shuffle, augmenter), {})
    trivial = trivial_loss(objective, dataset.meta.n_classes, y)
    resumed = checkpoint.resume(loop) if checkpoint is not None else None
    history: list[dict] = resumed.history if resumed else []
    first_epoch = max_epochs + 1 if resumed and resumed.stop_reason else (resumed.first_epoch if resumed else 1)
    stop_reason = (resumed.stop_reason if resumed else None) or "max_epochs"
    why_diverged = None
    for epoch in range(first_epoch, max_epochs + 1):
        epoch_start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        train_loss, correct = _train_epoch(model, optimizer, objective, config, x, y, lengths, batch_size, shuffle, None, augmenter)
        plateau.step(train_loss)
        row = {"epoch": epoch, "train_loss": train_loss}
        if objective.has_accuracy:
            row["train_acc"] = correct / (n * per_example)
        row["lr"] = lr
        row["seconds"] = time.perf_counter() - epoch_start
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        why_diverged = divergence(train_loss, 0.0, trivial, epoch)
        reason = "diverged" if why_diverged else stopper.after_epoch(epoch, train_loss, model)
        if checkpoint is not None:
            checkpoint.save_epoch(loop, epoch, history, reason)
        if reason:
            stop_reason = reason
            break
    train_seconds = time.perf_counter() - stopper.start
    model.load_state_dict(stopper.best_state)
    metrics = final_metrics(model, dataset, objective, history, stopper.best_epoch, max_epochs, stop_reason, train_seconds)
    metrics.update(refit_epochs=0, validation="none", best_train_loss=stopper.best_loss)
    if stop_reason == "diverged":
        metrics["diverged"] = why_diverged or divergence(history[-1]["train_loss"], 0.0, trivial, len(history))
    return RunResult(history=history, metrics=metrics, config=config)

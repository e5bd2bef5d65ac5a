"""The parts every way of training shares (supervised, without validation, semi-supervised, streams,
distributed): the objective, evaluation, the optimizer and its step, one epoch of mini-batches, the
early stopper, divergence, final metrics. The one epoch loop (train/epochs.py) and its strategies are
built from these."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .checkpoint import raise_if_stopped
from .config import TrainConfig


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
        raise UserError(f"device '{device}' asked for but no CUDA GPU is available; use device='cpu'")
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


def batch_rows(t: torch.Tensor | None, start: int, stop: int, device) -> torch.Tensor | None:
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
        out = run_model(model, xb, batch_rows(lengths, i, i + batch_size, device))
        loss, right = objective.loss(out, yb), objective.correct(out, yb)
        total_loss += loss.item() * len(yb)
        correct += int(right)
    n = max(len(y), 1)
    acc = correct / (n * objective.predictions_per_example(y)) if objective.has_accuracy else None
    return total_loss / n, acc


@torch.no_grad()
def batch_norm_statistics(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, batch_size: int) -> int:
    """Recompute the running mean and variance of every batch norm in `model` over (x, lengths) for
    the weights it has now: the statistics eval mode normalises with. Training keeps them as moving
    averages (momentum 0.1) of batches seen under earlier weights; for weights kept from an earlier
    epoch, or at a high learning rate, those belong to other weights. Each batch norm's averages are
    reset and every batch (of equal sizes, `batches`) weighs equally (as torch.optim.swa_utils.update_bn does, Izmailov et al. 2018,
    which cannot pass `lengths` to a model); nothing else runs in training mode, so dropout draws no
    random numbers. Returns how many batch norms were recomputed (0: the model has none)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or len(x) == 0:
        return 0
    momenta = [m.momentum for m in norms]
    device = next(model.parameters()).device
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.train()
    try:
        for k, idx in enumerate(batches(torch.arange(len(x)), batch_size)):  # equal sizes, as training's
            for m in norms:
                m.momentum = 1.0 / (k + 1)  # the running value becomes the mean over batches 1..k+1
            run_model(model, x[idx].to(device), None if lengths is None else lengths[idx].to(device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    return len(norms)


@torch.no_grad()
def inference_throughput(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None, batch_size: int = 256, min_seconds: float = 0.2) -> float:
    """Examples per second of `model` in eval mode on `x`, batches of `batch_size`, after one warm-up batch."""
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    lengths = None if lengths is None else lengths.to(device)
    run_model(model, x[:batch_size], batch_rows(lengths, 0, batch_size, device))  # warm-up (allocations, lazy init)
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(x), batch_size):
            run_model(model, x[i : i + batch_size], batch_rows(lengths, i, i + batch_size, device))
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


def make_augmenter(meta, config: TrainConfig):
    """The batch augmentation of this run (None when off), with its own generator seeded from the run's seed."""
    if not config.augment:
        return None
    from .augment import augment, check_augmentable

    check_augmentable(meta)
    generator = torch.Generator().manual_seed(config.seed + 1_000_003)  # apart from the shuffling stream
    fn = lambda x, lengths: augment(x, meta.kind, generator, lengths)  # noqa: E731
    fn.generator = generator  # a checkpoint saves its state (checkpoint.py)
    return fn


# Above this, a gradient entry can make the squared norm overflow float32 (n * 1e30 < 3.4e38 for
# models under 3.4e8 parameters) though every entry is finite.
LARGEST_CLIPPABLE_GRADIENT = 1e15


def optimizer_step(model, optimizer, scheduler, config: TrainConfig, loss: torch.Tensor) -> bool:
    """Back-propagate `loss`, clip the gradient norm (unless clip is 0), step Adam and the schedule.

    Clipping (Pascanu et al. 2013) must see the true norm. A gradient exploding through a long
    recurrence can have finite entries whose sum of squares overflows; torch's clip_grad_norm_ then
    gets an infinite norm and multiplies every entry by 0, and Adam moves on its momentum alone. So
    when an entry exceeds LARGEST_CLIPPABLE_GRADIENT the gradient is first scaled down (its direction
    kept) and clipping brings it to the clip norm exactly. A gradient with an infinite or NaN entry
    has no direction: that step is skipped (the schedule still advances), as a mixed-precision
    GradScaler skips one, instead of Adam writing NaN into every weight. A NaN loss skips its step
    too; the epoch's loss then shows the divergence. Returns False when the step was skipped."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    stepped = True
    if config.clip > 0:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        # amax, not Python's max, which a NaN compared last would slip past; one sync a step, as GradScaler's check
        largest = float(torch.stack([g.detach().abs().amax() for g in grads]).amax()) if grads else 0.0
        stepped = math.isfinite(largest)
        if stepped and largest > LARGEST_CLIPPABLE_GRADIENT:
            for g in grads:
                g.mul_(LARGEST_CLIPPABLE_GRADIENT / largest)
        if stepped:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    if stepped:
        optimizer.step()
    else:
        optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()
    return stepped


def batches(order: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, ...]:
    """An epoch's shuffled `order` cut into ceil(n / batch_size) batches whose sizes differ by at most
    one: 270 examples at 128 are three batches of 90, not 128, 128 and 14. The number of steps is the
    same either way; what changes is that no step rests on a remnant of a few examples, which would
    take a full-rate step on a noisy gradient and give batch norm its training statistics from a
    handful of series (JapaneseVowels' 14 of 270, Covid3Month_disc's 12 of 140)."""
    return order.tensor_split(math.ceil(len(order) / batch_size)) if len(order) else ()


def train_epoch(model, optimizer, objective, config, x, y, lengths, batch_size, shuffle, scheduler=None, augmenter=None) -> tuple[float, int, int]:
    """One pass over (x, y) in a shuffled order, in batches of equal size (`batches`; at most
    `batch_size`); (mean training loss, number of right predictions, steps skipped for a gradient that
    was not finite)."""
    model.train()
    n, device = len(y), x.device
    order = torch.randperm(n, generator=shuffle).to(device)  # same order on every device
    loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
    skipped = 0
    for idx in batches(order, batch_size):
        xb, lb = x[idx], None if lengths is None else lengths[idx]
        if augmenter is not None:
            xb = augmenter(xb, lb)
        out = run_model(model, xb, lb)
        loss, right = objective.loss(out, y[idx]), objective.correct(out, y[idx])
        skipped += not optimizer_step(model, optimizer, scheduler, config, loss)
        raise_if_stopped()  # the first Ctrl-C: stop after this step (the last epoch-end checkpoint stays)
        loss_sum += loss.detach() * len(idx)  # summed on the device: no sync per step
        correct += right
    return loss_sum.item() / n, int(correct.item()), skipped


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
        "train_acc": best.get("train_acc"),  # the kept epoch's, measured over its batches as it trained (None: regression)
        "best_epoch": best_epoch,
        "epochs": len(history),
        "max_epochs": max_epochs,
        "stop_reason": stop_reason,
        "skipped_steps": sum(row.get("skipped_steps", 0) for row in history),  # gradients not finite (optimizer_step)
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
            return f"{name} loss became {loss} in epoch {epoch}; a lower learning rate (lr) or gradient clipping (clip) may help"
    for name, loss in (("training", train_loss), ("validation", val_loss)):
        if loss > DIVERGED_FACTOR * trivial:
            return (
                f"{name} loss {loss:.3g} in epoch {epoch} is over {DIVERGED_FACTOR:,.0f} times that of a trivial predictor ({trivial:.3g}); "
                f"a lower learning rate (lr) may help"
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
    The setting is the calling thread's:
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


def all_labelled(dataset, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(x, y, lengths) of the training and validation splits together, on `device`."""
    train, val = dataset.train, dataset.val
    x = torch.cat([train.x, val.x]).to(device)
    y = torch.cat([train.y, val.y]).to(device)
    lengths = None if train.lengths is None else torch.cat([train.lengths, val.lengths]).to(device)
    return x, y, lengths

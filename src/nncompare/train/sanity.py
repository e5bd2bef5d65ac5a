"""The overfit check (step 4 of the recipe): with every extra off, can the model fit one small fixed
batch? A model that cannot memorise 64 examples will not learn the data set either, and what went
wrong is easier to see on one batch than on a full run.

Each model trains on the first `examples` training examples, all of them every step (no shuffling, no
dropout, no normalisation layers, no weight decay, no clipping), for at most `steps` steps. Verdict:

- pass: the training loss falls below `loss_threshold` and training accuracy reaches 100% (regression:
  the MSE falls below 1% of the targets' variance; next-step prediction, where the same context can be
  followed by different symbols, must reach the best accuracy the batch allows);
- fail, with a diagnosis from what was measured during the steps: the loss went NaN or up (learning
  rate too high), stayed flat (too low, or dead ReLU units), gradients that vanish or explode through
  time (recurrent models: the gradient reaching the first input step against the last), or labels
  that cannot be fit (the same input with two labels).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from ..errors import UserError
from .steps import Objective, resolve_device, run_model

DEFAULT_EXAMPLES, DEFAULT_STEPS = 64, 1000
# hyperparameters that are extras (regularisers, normalisation) and the value that turns each off
EXTRAS_OFF = {"dropout": 0.0, "recurrent_dropout": 0.0, "norm": "none"}
VANISHING, EXPLODING = 1e-4, 1e4  # first-step / last-step gradient ratios that count as a problem
# next-step prediction over 64 windows is thousands of positions to memorise; within 1 point of the best
# the batch allows counts as fitted
PER_STEP_SLACK = 0.01


@dataclass
class SanityResult:
    model: str
    passed: bool
    steps: int  # steps trained (fewer than the budget when it passed early)
    initial_loss: float
    final_loss: float
    train_acc: float | None  # None for regression
    target_acc: float | None  # the accuracy that counts as fitted (1.0, or less when labels conflict)
    hint: str  # what went wrong and what to try; "" when it passed
    measured: dict = field(default_factory=dict)  # dead-unit share, gradient norms, time-gradient ratio, ...
    seconds: float = 0.0
    model_args: dict = field(default_factory=dict)  # the hyperparameters it was built with (extras off)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def subset(dataset, examples: int):
    """The first `examples` training examples (x, y, lengths); fixed, so every run sees the same batch."""
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise UserError(f"examples must be a positive whole number, got {examples!r}")
    train = dataset.train
    n = min(examples, len(train.y))
    if n == 0:
        raise UserError("the training split is empty; the overfit check needs at least one training example")
    lengths = None if train.lengths is None else train.lengths[:n]
    return train.x[:n], train.y[:n], lengths


def attainable_accuracy(x: torch.Tensor, y: torch.Tensor, task: str, lengths: torch.Tensor | None = None) -> tuple[float, int]:
    """(best accuracy any model can reach on this batch, number of conflicting examples or positions).

    classify: examples with identical inputs but different labels cannot all be right; per_step: the
    same prefix (everything up to and including a position) followed by different targets. Regression
    has no accuracy: (1.0, 0)."""
    if task == "regress":
        return 1.0, 0
    if task == "per_step":
        groups: dict[bytes, dict[int, int]] = {}
        flat_x = x.reshape(len(x), x.shape[1], -1)
        for i in range(len(x)):
            for t in range(y.shape[1]):
                key = flat_x[i, : t + 1].numpy().tobytes()
                counts = groups.setdefault(key, {})
                counts[int(y[i, t])] = counts.get(int(y[i, t]), 0) + 1
    else:
        groups = {}
        for i in range(len(x)):
            row = x[i] if lengths is None else x[i, : int(lengths[i])]
            key = row.numpy().tobytes()
            counts = groups.setdefault(key, {})
            counts[int(y[i])] = counts.get(int(y[i]), 0) + 1
    total = sum(sum(c.values()) for c in groups.values())
    best = sum(max(c.values()) for c in groups.values())
    conflicting = sum(sum(c.values()) for c in groups.values() if len(c) > 1)
    return best / total, conflicting


def _parameter_gradient_norms(model: nn.Module) -> dict[str, float]:
    return {name: float(p.grad.norm()) for name, p in model.named_parameters() if p.grad is not None}


def _time_gradient_ratio(model, objective, x, y, lengths, kind: str) -> float | None:
    """|dLoss/d input at the first step| / |... at the last real step|, averaged over the batch, for a
    sequence read by a recurrent model (series: steps; images: rows). None when the input is not
    differentiable (text is read as symbol ids) or the gradient at the last step is zero."""
    if kind == "text" or not x.is_floating_point():
        return None
    xg = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    loss = objective.loss(run_model(model, xg, lengths), y)
    (grad,) = torch.autograd.grad(loss, xg)
    model.zero_grad(set_to_none=True)
    if kind == "image":
        per_step = grad.transpose(1, 2).flatten(2).norm(dim=2)  # (B, C, H, W) -> (B, H): one row a step
    else:
        per_step = grad.flatten(2).norm(dim=2)  # (B, L, C) -> (B, L)
    last_index = torch.full((len(x),), per_step.shape[1] - 1) if lengths is None else (lengths - 1).clamp(min=0)
    first = per_step[:, 0].mean()
    last = per_step[torch.arange(len(x)), last_index].mean()
    if float(last) == 0.0:
        return None
    return float(first / last)


class _DeadUnits:
    """Share of ReLU outputs (each unit at each position) that are zero for every example of a pass."""

    def __init__(self, model: nn.Module):
        self.zero, self.total = 0, 0
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, nn.ReLU)]

    def _hook(self, module, inputs, output):
        never_active = (output <= 0).all(dim=0)  # over the batch
        self.zero += int(never_active.sum())
        self.total += never_active.numel()

    def close(self) -> float | None:
        for h in self.handles:
            h.remove()
        return None if self.total == 0 else self.zero / self.total


def check_model(
    model: nn.Module,
    name: str,
    family: str,
    meta,
    batch,
    lr: float,
    steps: int = DEFAULT_STEPS,
    loss_threshold: float = 0.05,
    device: str = "cpu",
) -> SanityResult:
    """Train `model` on `batch` = (x, y, lengths), the same batch every step, and judge it."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"steps must be a positive whole number, got {steps!r}")
    if not (isinstance(loss_threshold, (int, float)) and loss_threshold > 0):
        raise UserError(f"loss threshold must be a positive number, got {loss_threshold!r}")
    dev = resolve_device(device)
    x, y, lengths = batch
    objective = Objective(meta.task, meta.kind)
    target_acc, conflicting = attainable_accuracy(x, y, meta.task, lengths)
    model.to(dev)
    x, y = x.to(dev), y.to(dev)
    lengths = None if lengths is None else lengths.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    measured: dict = {"examples": len(y), "lr": lr}
    if meta.task == "regress":
        variance = float(y.float().var(unbiased=False)) if len(y) > 1 else 0.0
        goal = 0.01 * variance if variance > 0 else loss_threshold
        measured["goal_mse"] = goal
    per_example = y[0].numel() if meta.task == "per_step" else 1

    model.train()
    if family == "recurrent":
        measured["time_gradient_ratio"] = _time_gradient_ratio(model, objective, x, y, lengths, meta.kind)
    start = time.perf_counter()
    losses: list[float] = []
    acc = None
    passed = False
    for step in range(1, steps + 1):
        out = run_model(model, x, lengths)
        loss = objective.loss(out, y)
        value = loss.item()
        losses.append(value)
        if objective.has_accuracy:
            acc = int(objective.correct(out, y)) / (len(y) * per_example)
        if not math.isfinite(value):
            break
        if meta.task == "regress":
            passed = value < goal
        elif meta.task == "per_step":
            passed = acc >= target_acc - PER_STEP_SLACK
        else:
            passed = conflicting == 0 and acc == 1.0 and value < loss_threshold
        if passed:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step == 1:
            norms = _parameter_gradient_norms(model)
            measured["first_step_gradient_norms"] = norms
        optimizer.step()
    seconds = time.perf_counter() - start

    dead = _DeadUnits(model)
    with torch.no_grad():
        final_out = run_model(model, x, lengths)
    measured["dead_relu_share"] = dead.close()
    final = float(objective.loss(final_out, y)) if math.isfinite(losses[-1]) else losses[-1]
    if objective.has_accuracy and math.isfinite(final):
        acc = int(objective.correct(final_out, y)) / (len(y) * per_example)
    measured["conflicting"] = conflicting
    result = SanityResult(
        model=name,
        passed=passed,
        steps=len(losses),
        initial_loss=losses[0],
        final_loss=final,
        train_acc=acc,
        target_acc=target_acc if objective.has_accuracy else None,
        hint="" if passed else diagnose(losses[:-1] + [final], measured, meta.task, lr, steps, family),
        measured=measured,
        seconds=seconds,
    )
    return result


def diagnose(losses: list[float], measured: dict, task: str, lr: float, steps: int, family: str) -> str:
    """The likeliest reason a model did not fit its batch, from what was measured, with what to try."""
    first, last = losses[0], losses[-1]
    if measured.get("conflicting") and task == "classify":
        return (
            f"labels that cannot be fit: {measured['conflicting']} of the {measured['examples']} examples share an "
            "input with an example of another label; check the labels (or duplicates) in the data"
        )
    if not math.isfinite(last):
        return f"loss became {last} at step {len(losses)}: learning rate too high; try `lr={lr / 10:g}`"
    if last > first * 1.05:
        return f"loss went up ({first:.3g} -> {last:.3g}): learning rate too high; try `lr={lr / 10:g}`"
    ratio = measured.get("time_gradient_ratio")
    vanishing = ratio is not None and ratio < VANISHING
    reach = "" if not vanishing else ("no gradient at all reaches the first step" if ratio == 0 else f"the first step gets {ratio:.1e} of the last step's gradient")
    if last < first * 0.9:  # learning, only not there yet
        text = f"loss falling ({first:.3g} -> {last:.3g}) but the batch is not fitted within {steps} steps; give it more steps (`steps={steps * 4}`) or a higher `lr`"
        if vanishing:
            text += f"; gradients vanish through time ({reach}), so a gated model (lstm, gru) or a convolutional one may fit it"
        return text
    # stuck: say why
    peak = max(losses)
    if peak > 3 * first:  # a jump to several times the starting loss, then stuck: the steps are too big
        return f"loss jumped to {peak:.3g} (from {first:.3g}) and ended stuck at {last:.3g}: learning rate too high; try `lr={lr / 10:g}`"
    if vanishing:
        return (
            f"loss stuck ({first:.3g} -> {last:.3g}) and gradients vanish through time: {reach}, so early inputs "
            "cannot be learned; try a gated model (lstm, gru), a convolutional one, or shorter sequences"
        )
    if ratio is not None and ratio > EXPLODING:
        return f"gradients explode through time (first step {ratio:.1e} x the last step's); lower the learning rate or clip gradients"
    norms = measured.get("first_step_gradient_norms") or {}
    if norms and max(norms.values()) > 1e3:
        layer = max(norms, key=norms.get)
        return f"exploding gradients (norm {norms[layer]:.1e} in {layer}); lower the learning rate or clip gradients"
    dead = measured.get("dead_relu_share")
    if dead is not None and dead > 0.5:
        return f"loss stuck ({first:.3g} -> {last:.3g}) with {dead:.0%} of ReLU units never active (dead units); try a lower `lr` or another activation"
    return f"loss stuck ({first:.3g} -> {last:.3g}) over {len(losses)} steps: learning rate too low; try `lr={lr * 10:g}`"


def sanity(
    data: str,
    models=None,
    examples: int = DEFAULT_EXAMPLES,
    steps: int = DEFAULT_STEPS,
    lr: float | None = None,
    seed: int = 0,
    loss_threshold: float = 0.05,
    device: str = "cpu",
    data_options: dict | None = None,
    model_args: dict | None = None,
    on_result=None,
    on_note=None,
) -> list[SanityResult]:
    """Run the overfit check for each model on `data` (default: every registered model); one
    SanityResult per model, in order. `lr` overrides each model's recommended rate. `on_note(text)`
    hears what the loader says about the data and which default models cannot read it (skipped)."""
    from ..models import parse_models
    from ..data import load_dataset
    from ..models import create_model, get_model_info
    from ..utils import set_seed

    names = parse_models(models)
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise UserError(f"lr must be a positive number such as 0.003, got {lr!r}")
    dataset = load_dataset(data, **(data_options or {}))
    from ..models import models_for_data

    names, skip_notes = models_for_data(names, dataset.meta, models is not None)  # tables: the MLP only
    for note in [*dataset.meta.notes, *skip_notes]:
        if on_note is not None:
            on_note(note)
    batch = subset(dataset, examples)
    results = []
    for name in names:
        info = get_model_info(name)
        args = {k: v for k, v in EXTRAS_OFF.items() if k in info.hyperparameters()}
        args.update((model_args or {}).get(name, {}))
        set_seed(seed)
        model = create_model(name, dataset.meta, **args)
        result = check_model(model, name, info.family, dataset.meta, batch, lr if lr is not None else info.default_lr, steps, loss_threshold, device)
        result.model_args = args
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results

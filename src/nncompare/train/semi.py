"""Semi-supervised training ("add more data"): keep N labelled training examples, treat the rest of the
training split as unlabelled, and use them (or not) in one of three ways:

- none: supervised only, on the N labelled examples (the baseline the other two must beat);
- pseudo: pseudo-labelling (Lee 2013): after a warm-up of 10% of the epochs on the labelled examples,
  every epoch the model labels the unlabelled examples, and those it labels with probability at least
  0.95 join that epoch's training set with their predicted labels;
- meanteacher (Tarvainen & Valpola 2017): a teacher whose weights are an exponential moving average of
  the student's (decay 0.99) gives targets on unlabelled batches; the student is trained on the
  labelled cross-entropy plus a consistency cost, the squared difference between the two models' class
  probabilities under two independent draws of the kind's augmentation, weighted up to 10 with a
  sigmoid ramp-up over the first 30% of the steps. The teacher is the model that is validated,
  kept and tested.

The labelled subset is stratified and fixed (seed 0), the same for every model and seed. Validation
and test splits are untouched. Classification only.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError

SEMI_METHODS = ("none", "pseudo", "meanteacher")
LABEL_SPLIT_SEED = 0
PSEUDO_THRESHOLD = 0.95
PSEUDO_WARMUP = 0.1  # share of the epochs trained on labelled data only before pseudo-labels start
EMA_DECAY = 0.99
CONSISTENCY_WEIGHT = 10.0
RAMP_UP = 0.3  # share of the planned steps over which the consistency weight ramps up


def labelled_subset(y: torch.Tensor, n_labels: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(labelled indices, unlabelled indices) of the training split: `n_labels` stratified, fixed."""
    from ..data.base import stratified_split

    n = len(y)
    if isinstance(n_labels, bool) or not isinstance(n_labels, int) or n_labels < 1:
        raise UserError(f"labels must be a positive whole number of labelled examples, got {n_labels!r}")
    if n_labels < n_classes:
        raise UserError(f"--labels {n_labels} is fewer than the {n_classes} classes; keep at least one example per class")
    if n_labels >= n:
        raise UserError(f"--labels {n_labels} leaves nothing unlabelled: the training split has {n} examples; choose fewer")
    unlabelled, labelled = stratified_split(y.cpu().numpy(), n_labels / n, LABEL_SPLIT_SEED)
    if len(labelled) != n_labels:  # stratified_split rounds the held-out count up
        labelled, unlabelled = labelled[:n_labels], np.sort(np.concatenate([unlabelled, labelled[n_labels:]]))
    return labelled, unlabelled


def check_semi(dataset, config) -> tuple[np.ndarray, np.ndarray]:
    """Refuse what semi-supervised training cannot do here; return (labelled, unlabelled) indices."""
    meta = dataset.meta
    if meta.task != "classify":
        raise UserError(f"--labels applies to classification; {meta.name} is a {meta.task} task")
    if config.refit:
        raise UserError("--labels and --refit cannot be combined; use one of the two")
    if config.semi == "meanteacher" and meta.kind not in ("series", "image"):
        raise UserError(f"the mean teacher needs an augmentation, defined for series and images, not {meta.kind}; use --semi pseudo")
    return labelled_subset(dataset.train.y, config.labels, meta.n_classes)


def fit_semi(model: nn.Module, dataset, config, on_epoch=None, checkpoint=None):
    """`fit` for `config.labels` set: train with `config.semi` on the labelled part of the training split.
    With `checkpoint`, checkpointed at epoch ends and resumed as `fit` is (the teacher, its noise and
    unlabelled-order generators and the step count included)."""
    from .checkpoint import LoopState, raise_if_stopped
    from .loop import Objective, RunResult, Stopper, _augmenter, _train_epoch, divergence, epoch_budget, evaluate, final_metrics, loop_generators, make_optimizer, trivial_loss, optimizer_step, resolve_device

    meta = dataset.meta
    labelled, unlabelled = check_semi(dataset, config)
    device = resolve_device(config.device)
    model.to(device)
    train, val = dataset.train, dataset.val
    li, ui = torch.as_tensor(labelled), torch.as_tensor(unlabelled)
    x_l, y_l = train.x[li].to(device), train.y[li].to(device)
    x_u = train.x[ui].to(device)
    len_l = None if train.lengths is None else train.lengths[li].to(device)
    len_u = None if train.lengths is None else train.lengths[ui].to(device)
    n = len(y_l)
    batch_size = min(config.batch_size, n)
    objective = Objective(meta.task, meta.kind)
    steps_per_epoch = math.ceil(n / batch_size)
    max_epochs, patience = epoch_budget(config, steps_per_epoch)
    optimizer, scheduler = make_optimizer(model, config, max_epochs * steps_per_epoch)
    shuffle = torch.Generator().manual_seed(config.seed)
    augmenter = _augmenter(meta, config)
    teacher = None
    if config.semi == "meanteacher":
        from .augment import augment

        teacher = copy.deepcopy(model)
        for p in teacher.parameters():
            p.requires_grad_(False)
        noise = torch.Generator().manual_seed(config.seed + 2_000_003)
        unlabelled_order = torch.Generator().manual_seed(config.seed + 3_000_017)
        total_steps, step = max_epochs * steps_per_epoch, 0
    evaluated = teacher if teacher is not None else model

    stopper = Stopper(evaluated, patience, config.max_seconds)
    generators, modules, extra = loop_generators(shuffle, augmenter), {}, {}
    if teacher is not None:
        generators.update(noise=noise, unlabelled_order=unlabelled_order)
        modules["teacher"] = teacher.state_dict()  # live tensors: restored in place
        extra["step"] = 0
    loop = LoopState(model, optimizer, scheduler, stopper, generators, modules, extra)
    resumed = checkpoint.resume(loop) if checkpoint is not None else None
    history = resumed.history if resumed else []
    first_epoch = resumed.first_epoch if resumed else 1
    if resumed and resumed.stop_reason:
        first_epoch = max_epochs + 1
    stop_reason = (resumed.stop_reason if resumed else None) or "max_epochs"
    if teacher is not None:
        step = loop.extra["step"]
    warmup = max(1, int(PSEUDO_WARMUP * max_epochs))
    trivial, why_diverged = trivial_loss(objective, meta.n_classes, y_l), None
    for epoch in range(first_epoch, max_epochs + 1):
        epoch_start = time.perf_counter()
        row = {"epoch": epoch}
        if config.semi == "pseudo":
            x_e, y_e, len_e, n_pseudo = x_l, y_l, len_l, 0
            if epoch > warmup:
                probs = _probabilities(model, x_u, len_u)
                conf, guess = probs.max(1)
                keep = conf >= PSEUDO_THRESHOLD
                n_pseudo = int(keep.sum())
                if n_pseudo:
                    x_e, y_e = torch.cat([x_l, x_u[keep]]), torch.cat([y_l, guess[keep]])
                    len_e = None if len_l is None else torch.cat([len_l, len_u[keep]])
            train_loss, correct = _train_epoch(model, optimizer, objective, config, x_e, y_e, len_e, batch_size, shuffle, scheduler, augmenter)
            row.update(train_loss=train_loss, train_acc=correct / len(y_e), pseudo_labels=n_pseudo)
        elif config.semi == "meanteacher":
            model.train()
            teacher.train()
            order = torch.randperm(n, generator=shuffle).to(device)
            loss_sum, consistency_sum, correct = 0.0, 0.0, 0
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                uidx = torch.randint(0, len(ui), (len(idx),), generator=unlabelled_order).to(device)
                xb, lb = x_l[idx], None if len_l is None else len_l[idx]
                if augmenter is not None:
                    xb = augmenter(xb, lb)
                xu, lu = x_u[uidx], None if len_u is None else len_u[uidx]
                out = model(xb) if lb is None else model(xb, lb)
                student_u = _run(model, augment(xu, meta.kind, noise, lu), lu)
                with torch.no_grad():
                    teacher_u = _run(teacher, augment(xu, meta.kind, noise, lu), lu)
                ramp = min(1.0, step / max(1.0, RAMP_UP * total_steps))
                weight = CONSISTENCY_WEIGHT * math.exp(-5 * (1 - ramp) ** 2)
                consistency = F.mse_loss(student_u.softmax(-1), teacher_u.softmax(-1))
                loss = objective.loss(out, y_l[idx]) + weight * consistency
                optimizer_step(model, optimizer, scheduler, config, loss)
                _ema(teacher, model, EMA_DECAY)
                raise_if_stopped()
                step += 1
                loss_sum += float(loss.detach()) * len(idx)
                consistency_sum += float(consistency.detach()) * len(idx)
                correct += int(objective.correct(out, y_l[idx]))
            row.update(train_loss=loss_sum / n, train_acc=correct / n, consistency=consistency_sum / n)
            loop.extra["step"] = step
        else:
            train_loss, correct = _train_epoch(model, optimizer, objective, config, x_l, y_l, len_l, batch_size, shuffle, scheduler, augmenter)
            row.update(train_loss=train_loss, train_acc=correct / n)
        val_loss, val_acc = evaluate(evaluated, val.x, val.y, val.lengths, objective=objective)
        row.update(val_loss=val_loss, val_acc=val_acc, seconds=time.perf_counter() - epoch_start)
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        why_diverged = divergence(row["train_loss"], val_loss, trivial, epoch)
        reason = "diverged" if why_diverged else stopper.after_epoch(epoch, val_loss, evaluated)
        if checkpoint is not None:
            checkpoint.save_epoch(loop, epoch, history, reason)
        if reason:
            stop_reason = reason
            break
    train_seconds = time.perf_counter() - stopper.start
    best_epoch = stopper.best_epoch
    model.load_state_dict(stopper.best_state)  # the teacher's weights for the mean teacher: it is the model kept
    metrics = final_metrics(model, dataset, objective, history, best_epoch, max_epochs, stop_reason, train_seconds)
    metrics.update(refit_epochs=0, labelled=n, unlabelled=len(ui), semi=config.semi)
    if stop_reason == "diverged":
        metrics["diverged"] = why_diverged or divergence(history[-1]["train_loss"], history[-1]["val_loss"], trivial, len(history))
    return RunResult(history=history, metrics=metrics, config=config)


def _run(model, x, lengths):
    return model(x) if lengths is None else model(x, lengths)


@torch.no_grad()
def _probabilities(model, x, lengths, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    parts = [_run(model, x[i : i + batch_size], None if lengths is None else lengths[i : i + batch_size]).softmax(-1) for i in range(0, len(x), batch_size)]
    model.train()
    return torch.cat(parts)


@torch.no_grad()
def _ema(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student; buffers (batch-norm statistics) copied."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)

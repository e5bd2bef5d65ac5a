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

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .checkpoint import raise_if_stopped
from .epochs import Supervised
from .steps import batches, optimizer_step, run_model

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
        raise UserError(f"labels={n_labels} is fewer than the {n_classes} classes; keep at least one example per class")
    if n_labels >= n:
        raise UserError(f"labels={n_labels} leaves nothing unlabelled: the training split has {n} examples; choose fewer")
    unlabelled, labelled = stratified_split(y.cpu().numpy(), n_labels / n, LABEL_SPLIT_SEED)
    if len(labelled) != n_labels:  # stratified_split rounds the held-out count up
        labelled, unlabelled = labelled[:n_labels], np.sort(np.concatenate([unlabelled, labelled[n_labels:]]))
    return labelled, unlabelled


def check_semi(dataset, config) -> tuple[np.ndarray, np.ndarray]:
    """Refuse what semi-supervised training cannot do here; return (labelled, unlabelled) indices."""
    meta = dataset.meta
    if meta.task != "classify":
        raise UserError(f"labels (semi-supervised training) applies to classification; {meta.name} is a {meta.task} task")
    if config.refit:
        raise UserError("labels and refit=True cannot be combined; use one of the two")
    if config.semi == "meanteacher" and meta.kind not in ("series", "image"):
        raise UserError(f"the mean teacher needs an augmentation, defined for series and images, not {meta.kind}; use semi='pseudo'")
    return labelled_subset(dataset.train.y, config.labels, meta.n_classes)


def semi_strategy(model: nn.Module, dataset, config) -> Supervised:
    """The strategy of `fit` for `config.labels` set: train with `config.semi` on the labelled part of
    the training split. Checkpointed and resumed as `fit` is (the teacher, its noise and
    unlabelled-order generators and the step count included)."""
    labelled, unlabelled = check_semi(dataset, config)
    kind = {"none": LabelledOnly, "pseudo": PseudoLabels, "meanteacher": MeanTeacher}[config.semi]
    return kind(model, dataset, config, labelled, unlabelled)


class LabelledOnly(Supervised):
    """semi="none": supervised training on the labelled examples alone, the baseline the others must beat."""

    def __init__(self, model: nn.Module, dataset, config, labelled: np.ndarray, unlabelled: np.ndarray):
        train = dataset.train
        li, ui = torch.as_tensor(labelled), torch.as_tensor(unlabelled)
        super().__init__(model, dataset, config, train.x[li], train.y[li], None if train.lengths is None else train.lengths[li])
        self.unlabelled = (train.x[ui], None if train.lengths is None else train.lengths[ui])

    def prepare(self, device) -> int:
        x_u, len_u = self.unlabelled
        self.x_u, self.len_u = x_u.to(device), None if len_u is None else len_u.to(device)
        return super().prepare(device)

    def finish(self, metrics, stopper):
        metrics.update(labelled=self.n, unlabelled=len(self.x_u), semi=self.config.semi)


class PseudoLabels(LabelledOnly):
    """semi="pseudo": after the warm-up, every epoch trains on the labelled examples and the unlabelled
    ones the model labels with probability at least PSEUDO_THRESHOLD, with those labels."""

    def start(self, optimizer, scheduler, max_epochs):
        super().start(optimizer, scheduler, max_epochs)
        self.warmup = max(1, int(PSEUDO_WARMUP * max_epochs))

    def train_epoch(self, epoch, deadline) -> dict:
        x, y, lengths, n_pseudo = self.x, self.y, self.lengths, 0
        if epoch > self.warmup:
            conf, guess = _probabilities(self.model, self.x_u, self.len_u).max(1)
            keep = conf >= PSEUDO_THRESHOLD
            n_pseudo = int(keep.sum())
            if n_pseudo:
                x, y = torch.cat([x, self.x_u[keep]]), torch.cat([y, guess[keep]])
                lengths = None if lengths is None else torch.cat([lengths, self.len_u[keep]])
        loss, correct, skipped = self.train_on(x, y, lengths)
        return {"train_loss": loss, "train_acc": correct / len(y), "pseudo_labels": n_pseudo, **({"skipped_steps": skipped} if skipped else {})}


class MeanTeacher(LabelledOnly):
    """semi="meanteacher": the student learns the labelled cross-entropy plus the consistency with a
    teacher, the exponential moving average of its weights, on unlabelled batches under two draws of
    the augmentation. The teacher is validated, kept and tested."""

    def start(self, optimizer, scheduler, max_epochs):
        super().start(optimizer, scheduler, max_epochs)
        self.teacher = copy.deepcopy(self.model)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.noise = torch.Generator().manual_seed(self.config.seed + 2_000_003)
        self.unlabelled_order = torch.Generator().manual_seed(self.config.seed + 3_000_017)
        self.total_steps = max_epochs * math.ceil(self.n / self.batch_size)
        self.extra["step"] = 0

    @property
    def kept(self) -> nn.Module:
        return self.teacher

    def generators(self):
        return {**super().generators(), "noise": self.noise, "unlabelled_order": self.unlabelled_order}

    def modules(self):
        return {"teacher": self.teacher.state_dict()}  # live tensors: a resume restores them in place

    def train_epoch(self, epoch, deadline) -> dict:
        from .augment import augment

        model, teacher, objective, kind = self.model, self.teacher, self.objective, self.dataset.meta.kind
        x_l, y_l, len_l, x_u, len_u, n = self.x, self.y, self.lengths, self.x_u, self.len_u, self.n
        model.train()
        teacher.train()
        order = torch.randperm(n, generator=self.shuffle).to(x_l.device)
        loss_sum, consistency_sum, correct, step, skipped = 0.0, 0.0, 0, self.extra["step"], 0
        for idx in batches(order, self.batch_size):  # equal sizes, as fit's batches
            uidx = torch.randint(0, len(x_u), (len(idx),), generator=self.unlabelled_order).to(x_l.device)
            xb, lb = x_l[idx], None if len_l is None else len_l[idx]
            if self.augmenter is not None:
                xb = self.augmenter(xb, lb)
            xu, lu = x_u[uidx], None if len_u is None else len_u[uidx]
            out = run_model(model, xb, lb)
            student_u = run_model(model, augment(xu, kind, self.noise, lu), lu)
            with torch.no_grad():
                teacher_u = run_model(teacher, augment(xu, kind, self.noise, lu), lu)
            ramp = min(1.0, step / max(1.0, RAMP_UP * self.total_steps))
            weight = CONSISTENCY_WEIGHT * math.exp(-5 * (1 - ramp) ** 2)
            consistency = F.mse_loss(student_u.softmax(-1), teacher_u.softmax(-1))
            loss = objective.loss(out, y_l[idx]) + weight * consistency
            skipped += not optimizer_step(model, self.optimizer, self.scheduler, self.config, loss)
            _ema(teacher, model, EMA_DECAY)
            raise_if_stopped()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            consistency_sum += float(consistency.detach()) * len(idx)
            correct += int(objective.correct(out, y_l[idx]))
        self.extra["step"] = step
        return {"train_loss": loss_sum / n, "train_acc": correct / n, "consistency": consistency_sum / n, **({"skipped_steps": skipped} if skipped else {})}


@torch.no_grad()
def _probabilities(model, x, lengths, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    parts = [run_model(model, x[i : i + batch_size], None if lengths is None else lengths[i : i + batch_size]).softmax(-1) for i in range(0, len(x), batch_size)]
    model.train()
    return torch.cat(parts)


@torch.no_grad()
def _ema(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student; buffers (batch-norm statistics) copied."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)

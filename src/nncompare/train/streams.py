"""Character-level language models trained on the text as a stream, each family with the context
that suits it.

The text data sets cut each block into consecutive windows of 128 characters. Read one by one, a
window gives its first characters almost no context. Here every family gets its full context:

- recurrent models (RNN, LSTM, GRU) carry their hidden state across consecutive chunks of the text:
  truncated back-propagation through time (Williams & Peng 1990; the char-rnn recipe, Karpathy 2015).
  The training block is cut into B equal contiguous streams, one per batch row; step k reads chunk k
  of every stream, starting from the state chunk k-1 ended in, detached so gradients stop at the
  chunk boundary. The state is reset to zeros at the start of every epoch. Context: unbounded.
- convolutional models (CNN, TCN) and the MLP see a fixed context of C characters (the receptive
  field; the MLP's window, a neural n-gram, Bengio et al. 2003). They carry the last C-1 characters of
  the chunk before, read again in front of the next chunk (their loss is taken on the new chunk only),
  so every prediction past the first C-1 characters of a stream sees all C.

Validation and test read their block the same way, as one stream from its first character, so bits
per character are measured with the context each model has when it writes text (`sampling.py`).
No shuffling: the batches are the same every epoch, and the same seed gives the same numbers on CPU.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .config import TrainConfig
from .epochs import Strategy
from .steps import Objective, optimizer_step, trivial_loss

EVAL_CHUNK = 4096  # characters per forward pass when a block is scored; the score does not depend on it


def streams_apply(meta, model: nn.Module) -> bool:
    """Whether `model` trains on `meta`'s data as a character stream (next-character text)."""
    return meta.kind == "text" and meta.task == "per_step" and hasattr(model, "context_length")


def describe_context(context: int | None, chunk: int) -> int | str:
    """What the comparison table shows: characters seen per prediction, or how a state is trained."""
    return f"unbounded (TBPTT {chunk})" if context is None else context


def flat(split) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's windows put back end to end: its block as one stream of inputs and next characters.

    The windows are consecutive and do not overlap, so (N, T) -> (N*T,) is the block's text in order."""
    return split.x.reshape(-1), split.y.reshape(-1)


def stream_layout(x: torch.Tensor, y: torch.Tensor, streams: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The text cut into `streams` equal contiguous pieces, one per row: (N,) -> (streams, N // streams).

    Row b is characters b*L .. (b+1)*L-1; the last N mod `streams` characters are left out."""
    length = len(x) // streams
    return x[: streams * length].view(streams, length), y[: streams * length].view(streams, length)  # (B, L)


def chunks(xs: torch.Tensor, ys: torch.Tensor, chunk: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive chunks (B, chunk) of every stream, left to right; the last may be shorter."""
    for start in range(0, xs.shape[1], chunk):
        yield xs[:, start : start + chunk], ys[:, start : start + chunk]


def stream_step(model: nn.Module, x: torch.Tensor, carry):
    """Outputs for chunk `x` (B, T) of B streams and what to carry into the next chunk.

    `carry` is what the chunk before left (None at the start of a stream): a recurrent model's state,
    or for a fixed-context model the last context-1 characters, read again in front of `x`."""
    context = model.context_length()
    if context is None:
        return model.forward_stream(x, carry)  # (B, T, V), state
    inputs = x if carry is None else torch.cat([carry, x], 1)  # (B, P + T), P <= context - 1
    out = model(inputs)[:, inputs.shape[1] - x.shape[1] :]  # the new chunk's positions: (B, T, V)
    keep = min(context - 1, inputs.shape[1])
    return out, (inputs[:, inputs.shape[1] - keep :] if keep > 0 else None)


def detached(carry):
    """The carry cut off from the graph: gradients stop at the chunk boundary (truncated BPTT)."""
    if carry is None:
        return None
    if isinstance(carry, tuple):
        return tuple(c.detach() for c in carry)
    return carry.detach()


@torch.no_grad()
def evaluate_stream(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy) over a block (N,) read as one stream from its start.

    Every character is predicted from all the text before it in the block that the model's context
    reaches; reading in chunks of `chunk` with the carry gives the same numbers up to rounding."""
    model.eval()
    device = next(model.parameters()).device
    carry, total, correct = None, 0.0, 0
    for start in range(0, len(y), chunk):
        xb, yb = x[start : start + chunk].to(device)[None], y[start : start + chunk].to(device)  # (1, T), (T,)
        out, carry = stream_step(model, xb, carry)
        total += F.cross_entropy(out[0], yb, reduction="sum").item()
        correct += int((out[0].argmax(-1) == yb).sum())
    n = max(len(y), 1)
    return total / n, correct / n


def train_epoch(model, optimizer, scheduler, config: TrainConfig, objective: Objective, xs, ys, chunk: int, deadline: float | None = None) -> tuple[float, float, int]:
    """One pass over the streams (B, L), chunk after chunk from a fresh state; (mean loss per
    character, accuracy, steps skipped for a gradient that was not finite). With a `deadline` (time.perf_counter), the pass ends after the step that
    reaches it, so a wall-clock budget is kept to within one step rather than one epoch."""
    model.train()
    carry = None  # reset at every epoch start
    loss_sum = torch.zeros((), device=xs.device)
    correct = torch.zeros((), device=xs.device, dtype=torch.long)
    seen = skipped = 0
    for xb, yb in chunks(xs, ys, chunk):
        out, carry = stream_step(model, xb, carry)
        loss = objective.loss(out, yb)
        skipped += not optimizer_step(model, optimizer, scheduler, config, loss)
        carry = detached(carry)
        loss_sum += loss.detach() * yb.numel()  # the last chunk may be shorter: weigh by characters
        correct += objective.correct(out, yb)
        seen += yb.numel()
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return loss_sum.item() / seen, int(correct.item()) / seen, skipped


class Streams(Strategy):
    """Next-character text read as streams: the same rules as `fit` (Adam, clipping, epoch budget, early
    stopping on validation loss with the best weights kept, refit, max_seconds), with the batches read
    as streams. config.batch_size is the number of parallel streams; a chunk is one window of the data
    set. A max_seconds budget can end the last epoch part way (then validated as usual). Not
    checkpointed: a stopped text run starts again."""

    resumable = False

    def __init__(self, model: nn.Module, dataset, config: TrainConfig, text: tuple[torch.Tensor, torch.Tensor] | None = None, validation: bool = True):
        if config.augment:
            from .augment import check_augmentable

            check_augmentable(dataset.meta)  # refuses text with the message every other task gets
        super().__init__(model, dataset, config)
        self.text, self.validation, self.initial = text, validation, None
        self.chunk = dataset.meta.input_shape[0]

    def prepare(self, device) -> int:
        self.x_train, self.y_train = (t.to(device) for t in (self.text or flat(self.dataset.train)))
        self.x_val, self.y_val = flat(self.dataset.val)
        windows = len(self.x_train) // self.chunk
        if windows == 0:
            raise UserError("the training split is empty; the text needs at least one training window")
        self.streams = min(self.config.batch_size, windows)  # every stream at least one chunk long
        self.xs, self.ys = stream_layout(self.x_train, self.y_train, self.streams)
        self.trivial = trivial_loss(self.objective, self.dataset.meta.n_classes, self.y_train)
        if self.config.refit and self.validation:
            self.initial = copy.deepcopy(self.model.state_dict())
        return math.ceil(self.xs.shape[1] / self.chunk)

    def train_epoch(self, epoch, deadline) -> dict:
        loss, acc, skipped = train_epoch(self.model, self.optimizer, self.scheduler, self.config, self.objective, self.xs, self.ys, self.chunk, deadline)
        return {"train_loss": loss, "train_acc": acc, **({"skipped_steps": skipped} if skipped else {})}

    def validate(self) -> dict:
        if not self.validation:
            return {}
        loss, acc = evaluate_stream(self.model, self.x_val, self.y_val)
        return {"val_loss": loss, "val_acc": acc}

    def for_refit(self) -> Streams:
        # the training block followed by the validation block: the text in order, but for the < 1
        # window left over at the end of the training block
        self.model.load_state_dict(self.initial)
        device = self.x_train.device
        text = (torch.cat([self.x_train, self.x_val.to(device)]), torch.cat([self.y_train, self.y_val.to(device)]))
        return Streams(self.model, self.dataset, self.config, text, validation=False)

    def finish(self, metrics, stopper):
        # final_metrics scored the test windows one by one; the test block read as a stream replaces that
        # score, and the window score stays beside it to show what the carried context is worth
        metrics["test_loss_windows"] = metrics["test_loss"]
        test_loss, test_acc = evaluate_stream(self.model, *flat(self.dataset.test))
        score_name, score, _ = self.objective.score(test_loss, test_acc)
        metrics.update(test_loss=test_loss, test_acc=test_acc, score=score, score_name=score_name)
        metrics["context"] = describe_context(self.model.context_length(), self.chunk)
        metrics["streams"], metrics["chunk"] = self.streams, self.chunk
        metrics["refit_epochs"] = metrics.pop("refit_epochs")  # last, as it has always been

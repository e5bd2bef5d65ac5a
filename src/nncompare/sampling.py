"""Writing text with a trained character-level model: `generate` samples one character at a time.

A recurrent model steps its state one character at a time: the prompt is read once, then each new
character is fed with the state the one before left (the whole prefix is never read again). A
convolutional model or the MLP has no state; it reads again the last C characters, C its context
(receptive field or window), which is all its next prediction can depend on. Both give the outputs
of reading the whole prefix at once (the tests hold them to that).

The next character is drawn from softmax(logits / temperature), over the top_k most likely
characters when top_k is given (Fan, Lewis & Dauphin 2018); temperature 0 takes the most likely one
(greedy decoding). Draws come from a torch generator seeded with `seed`, so a seed repeats its text.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn

from .errors import UserError


def generate(run, prompt: str = "", chars: int = 200, temperature: float = 1.0, top_k: int | None = None, seed: int = 0) -> str:
    """The `chars` characters a stored text run writes after `prompt` (the prompt itself is not
    included). `run` is a run folder's path or a `StoredRun` (`nncompare.load_run`).

    temperature: 1 samples the model's own distribution, lower is more conservative, 0 is greedy.
    top_k: sample among the k most likely characters only (None: all). seed: the sampling draws.
    An empty prompt starts the text as after a line break (or, if the training text had none, after
    its vocabulary's first character). A prompt character the model never saw in training is a
    UserError naming it.

    >>> generate("nncompare-runs/20261128-040812-text/lstm-seed0", prompt="def ", chars=80, temperature=0.5)
    """
    from .store import StoredRun, load_run

    stored = run if isinstance(run, StoredRun) else load_run(run)
    meta = stored.meta
    if meta.kind != "text" or meta.task != "per_step":
        raise UserError(
            f"run '{stored.path}' was trained on {meta.name} ({meta.kind}, {meta.task}); generate needs a run trained on "
            "text: compare text or text:FILE first"
        )
    check_options(chars, temperature, top_k, seed)
    vocabulary = list(meta.class_names)
    ids = prompt_ids(prompt, vocabulary)
    generator = torch.Generator().manual_seed(seed)
    choose = lambda logits: choose_next(logits, temperature, top_k, generator)  # noqa: E731
    return "".join(vocabulary[i] for i in sample_ids(stored.model, ids, chars, choose))


def check_options(chars, temperature, top_k, seed) -> None:
    if isinstance(chars, bool) or not isinstance(chars, int) or chars < 0:
        raise UserError(f"chars must be a whole number of characters to write, 0 or more, got {chars!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"temperature must be 0 (always the most likely character) or a positive number such as 0.8, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"top_k must be a positive whole number of characters to sample among (or left out), got {top_k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a whole number, 0 or more, got {seed!r}")


def prompt_ids(prompt: str, vocabulary: list[str]) -> list[int]:
    """The prompt as character ids; an empty prompt starts after a line break (see `generate`)."""
    index = {c: i for i, c in enumerate(vocabulary)}
    if not prompt:
        return [index.get("\n", 0)]
    unknown = list(dict.fromkeys(c for c in prompt if c not in index))  # in the order they appear
    if unknown:
        named = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown)
        raise UserError(
            f"the prompt has {len(unknown)} character(s) the model never saw in training: {named}; write the prompt with "
            f"characters of its training text ({len(vocabulary)} distinct), or train on a text that contains them"
        )
    return [index[c] for c in prompt]


def choose_next(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> int:
    """The next character id from one position's logits (V,)."""
    if temperature == 0:
        return int(logits.argmax())  # greedy; the first of equal maxima
    scaled = logits.double() / temperature  # float64: a small temperature must not overflow exp
    if top_k is not None and top_k < len(scaled):
        kth = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    probs = torch.softmax(scaled, -1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def sample_ids(model: nn.Module, ids: list[int], chars: int, choose: Callable[[torch.Tensor], int]) -> list[int]:
    """`chars` new ids after `ids`, each picked by `choose` from the model's next-character logits (V,).

    Recurrent models (context_length() None) step their state; the others re-read their context."""
    model.eval()
    device = next(model.parameters()).device
    context = model.context_length()
    as_batch = lambda seq: torch.tensor([seq], dtype=torch.long, device=device)  # noqa: E731  (1, T)
    new: list[int] = []
    if context is None:
        logits, state = model.forward_stream(as_batch(ids), None)  # the prompt, read once: (1, T, V)
        for _ in range(chars):
            new.append(choose(logits[0, -1]))
            if len(new) < chars:
                logits, state = model.forward_stream(as_batch(new[-1:]), state)  # one step: (1, 1, V)
        return new
    sequence = list(ids)
    for _ in range(chars):
        logits = model(as_batch(sequence[-context:]))  # the context window: (1, <=C, V)
        new.append(choose(logits[0, -1]))
        sequence.append(new[-1])
    return new


def write_utf8(text: str, stream=None) -> None:
    """Write `text` as UTF-8 bytes whatever the terminal's locale says (a str from decoded UTF-8
    always encodes)."""
    import sys

    stream = stream or sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (a notebook's): it takes str
        stream.write(text)
        return
    stream.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


__all__ = ["generate", "sample_ids", "choose_next", "prompt_ids", "write_utf8"]

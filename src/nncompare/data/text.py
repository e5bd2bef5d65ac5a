"""Text: character-level next-character prediction (a per-step task, scored in bits per character).

- `text:FILE`: any UTF-8 text file;
- `text`: a built-in corpus that exists on every machine: the Python standard library's own source
  files, read in sorted order up to BUILTIN_CHARS characters (like char-rnn's Linux-source corpus).

The text is cut into contiguous blocks, never shuffled characters: the first 90% trains, the next 5%
validates, the last 5% tests. Each block is cut into windows of WINDOW characters; the target of a
window is the same text shifted one character on. Inputs are character ids (N, WINDOW) over the
vocabulary of the whole file; models read them as one-hot vectors.
"""

from __future__ import annotations

import math
import sysconfig
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .registry import register_family, register_source
from .base import Dataset, DatasetMeta, Split

WINDOW = 128  # characters per training example (char-rnn's default sequence length is 50; nanoGPT's char model 256)
FRACTIONS = (0.90, 0.05, 0.05)  # train / val / test, contiguous, in this order
BYTES_PER_CHARACTER = 40  # memory while a text file is turned into windows (see read_text)
BUILTIN_CHARS = 400_000  # enough to learn from, small enough to train on 2 cores in minutes


def read_text(path_text: str) -> str:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"no such text file '{path_text}'; give the path of a UTF-8 text file, as in text:notes.txt")
    from ..limits import check_fits

    # a character costs up to 4 bytes of str, 8 as an id, 16 in the (x, y) windows, and the id list
    # is built through a temporary array: about 40 bytes per byte of the file
    check_fits(path.stat().st_size * BYTES_PER_CHARACTER, f"'{path_text}' ({path.stat().st_size:,} bytes)", "use a shorter text file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read '{path_text}' ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"'{path_text}' is not UTF-8 text (byte {e.start} is {data[e.start]:#04x}); save it as UTF-8") from None
    if not text:
        raise UserError(f"'{path_text}' is empty; give a text file with at least {minimum_characters()} characters")
    return text


def builtin_corpus() -> tuple[str, str]:
    """(text, where it came from): the standard library's top-level .py files in sorted order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts, total, used = [], 0, 0
    for f in sorted(stdlib.glob("*.py")):
        try:
            chunk = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a file this machine cannot read is left out; the rest is still deterministic
        parts.append(chunk)
        total += len(chunk)
        used += 1
        if total >= BUILTIN_CHARS:
            break
    text = "".join(parts)[:BUILTIN_CHARS]
    if len(text) < minimum_characters():
        raise UserError(f"the built-in corpus found only {len(text)} characters under '{stdlib}'; give your own with text:FILE")
    return text, f"{used} source files of the Python standard library in {stdlib}"


def minimum_characters() -> int:
    """Characters needed for at least one window in each of the three blocks."""
    return max(math.ceil((WINDOW + 1) / f) for f in FRACTIONS)


def windows(ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of a block: x (N, WINDOW) ids and y = x shifted one character on."""
    n = (len(ids) - 1) // WINDOW
    x = ids[: n * WINDOW].reshape(n, WINDOW)
    y = ids[1 : n * WINDOW + 1].reshape(n, WINDOW)
    return torch.as_tensor(x, dtype=torch.int64), torch.as_tensor(y, dtype=torch.int64)


def unigram_bits_per_char(train_ids: np.ndarray, test_ids: np.ndarray, vocabulary: int) -> float:
    """Cross-entropy in bits of the test characters under the training text's character frequencies
    (add-one smoothed, so a character unseen in training costs finite bits)."""
    counts = np.bincount(train_ids, minlength=vocabulary) + 1.0
    p = counts / counts.sum()
    return float(-np.log2(p[test_ids]).mean())


BIGRAM_PRIORS = (0.01, 0.1, 1.0, 10.0, 100.0)  # strengths of the pull towards the unigram, chosen on validation


def bigram_probabilities(train_ids: np.ndarray, vocabulary: int, prior: float) -> np.ndarray:
    """P(next | previous) (V, V) from the training text's character pairs, smoothed towards the
    add-one unigram: (count(p, c) + prior * P(c)) / (count(p) + prior), a Dirichlet prior that a
    rarely seen previous character leans on (MacKay & Peto 1995)."""
    pairs = np.zeros((vocabulary, vocabulary))
    np.add.at(pairs, (train_ids[:-1], train_ids[1:]), 1.0)  # pairs[p, c]: how often c follows p
    unigram = np.bincount(train_ids, minlength=vocabulary) + 1.0
    unigram /= unigram.sum()
    return (pairs + prior * unigram[None, :]) / (pairs.sum(1, keepdims=True) + prior)


def bigram_bits_per_char(train_ids: np.ndarray, val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], vocabulary: int) -> tuple[float, float]:
    """(test bits per character, the prior used) of the training text's bigram model; `val` and
    `test` are (previous characters, next characters), the prior is the one scoring best on `val`."""

    def bits(p: np.ndarray, block) -> float:
        previous, following = block
        return float(-np.log2(p[previous, following]).mean())

    best = min(BIGRAM_PRIORS, key=lambda a: bits(bigram_probabilities(train_ids, vocabulary, a), val))
    return bits(bigram_probabilities(train_ids, vocabulary, best), test), best


def text_dataset(text: str, name: str, source: str) -> Dataset:
    if len(text) < minimum_characters():
        raise UserError(
            f"'{source}' has {len(text)} characters; at least {minimum_characters()} are needed for one window of "
            f"{WINDOW} characters in each of the train / val / test blocks ({', '.join(f'{f:.0%}' for f in FRACTIONS)})"
        )
    vocabulary = sorted(set(text))
    if len(vocabulary) < 2:
        raise UserError(f"'{source}' is one character ({vocabulary[0]!r}) repeated; next-character prediction needs a text of at least 2 distinct characters")
    index = {c: i for i, c in enumerate(vocabulary)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    a = int(len(ids) * FRACTIONS[0])
    b = a + int(len(ids) * FRACTIONS[1])
    blocks = {"train": ids[:a], "val": ids[a:b], "test": ids[b:]}
    splits = {k: Split(*windows(v)) for k, v in blocks.items()}
    test_targets = splits["test"].y.reshape(-1).numpy()
    meta = DatasetMeta(
        name=name,
        kind="text",
        task="per_step",
        input_shape=(WINDOW,),
        n_classes=len(vocabulary),
        class_names=vocabulary,
        description=f"{source}: {len(text):,} characters, {len(vocabulary)} distinct; windows of {WINDOW}; contiguous 90/5/5 train/val/test blocks",
        reference="character-level language modelling (Karpathy, char-rnn, 2015)",
        baseline={
            "name": "unigram character frequencies of the training block",
            "score_name": "test bits/char",
            "expected": unigram_bits_per_char(blocks["train"], test_targets, len(vocabulary)),
        },
    )
    return Dataset(train=splits["train"], val=splits["val"], test=splits["test"], meta=meta)


@register_source("text", kind="text", summary="next-character prediction on the Python standard library's own source (built in on every machine)")
def load_builtin_text() -> Dataset:
    text, where = builtin_corpus()
    return text_dataset(text, "text", where)


@register_family("text", kind="text", summary="next-character prediction on any UTF-8 text file (bits per character)", argument="FILE")
def load_text_file(path: str) -> Dataset:
    return text_dataset(read_text(path), f"text:{path}", path)

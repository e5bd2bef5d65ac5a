"""Text sources: character windows from contiguous blocks, the unigram baseline, bad files, and every
model as a causal next-character predictor."""

import math

import numpy as np
import pytest
import torch

import nncompare
from nncompare.data import load_dataset
from nncompare.data.text import WINDOW, minimum_characters
from nncompare.models import create_model, model_names
from nncompare.train import TrainConfig

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog. ({i % 7})\n" for i in range(60))


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_text_file_windows_are_contiguous_blocks(text_file):
    d = load_dataset(f"text:{text_file}")
    assert d.meta.kind == "text" and d.meta.task == "per_step" and d.meta.input_shape == (WINDOW,)
    vocab = d.meta.class_names
    assert vocab == sorted(set(TEXT)) and d.meta.n_classes == len(vocab)
    decode = lambda ids: "".join(vocab[i] for i in ids)
    train_text = decode(d.train.x.reshape(-1).tolist())
    assert TEXT.startswith(train_text)  # the training block is the start of the file, in order
    assert torch.equal(d.train.y[:, :-1], d.train.x[:, 1:])  # targets: the next character
    assert decode(d.train.y[0].tolist()) == TEXT[1 : WINDOW + 1]
    test_start = TEXT.index(decode(d.test.x[0].tolist()))
    assert test_start >= int(0.95 * len(TEXT)) - 1  # the test block is the end of the file
    assert d.sizes()["val"] >= 1 and d.sizes()["test"] >= 1


def test_unigram_baseline_in_bits(text_file):
    d = load_dataset(f"text:{text_file}")
    train_ids = np.array([d.meta.class_names.index(c) for c in TEXT[: int(len(TEXT) * 0.9)]])
    counts = np.bincount(train_ids, minlength=d.meta.n_classes) + 1.0
    p = counts / counts.sum()
    expected = -np.log2(p[d.test.y.reshape(-1).numpy()]).mean()
    assert d.meta.baseline["expected"] == pytest.approx(expected)
    assert d.meta.baseline["score_name"] == "test bits/char"


def test_a_txt_path_is_read_as_text(text_file):
    d = load_dataset(str(text_file))
    assert d.meta.kind == "text" and torch.equal(d.train.x, load_dataset(f"text:{text_file}").train.x)


def test_builtin_corpus_is_deterministic_python_source():
    a, b = load_dataset("text"), load_dataset("text")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    train_text = "".join(a.meta.class_names[i] for i in a.train.x.reshape(-1).tolist())
    assert a.meta.n_classes > 50 and "def " in train_text and "import " in train_text
    assert a.meta.baseline["expected"] > 3  # a few bits per character for source code


def test_bad_text_files_are_user_errors(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(("caf" + "\xe9" * 3000).encode("latin-1"))
    with pytest.raises(nncompare.UserError, match=r"not UTF-8 text \(byte 3 is 0xe9\)"):
        load_dataset(f"text:{latin}")
    short = tmp_path / "short.txt"
    short.write_text("too short", encoding="utf-8")
    with pytest.raises(nncompare.UserError, match=f"has 9 characters; at least {minimum_characters()} are needed"):
        load_dataset(f"text:{short}")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(nncompare.UserError, match="is empty"):
        load_dataset(f"text:{empty}")
    with pytest.raises(nncompare.UserError, match="no such text file"):
        load_dataset(f"text:{tmp_path / 'nope.txt'}")


@pytest.mark.parametrize("name", model_names())
def test_every_model_predicts_the_next_character_causally(name, text_file):
    meta = load_dataset(f"text:{text_file}").meta
    torch.manual_seed(0)
    model = create_model(name, meta).eval()
    x = torch.randint(0, meta.n_classes, (2, WINDOW))
    x2 = x.clone()
    x2[:, 50] = (x2[:, 50] + 1) % meta.n_classes
    with torch.no_grad():
        a, b = model(x), model(x2)
    assert a.shape == (2, WINDOW, meta.n_classes)
    torch.testing.assert_close(a[:, :50], b[:, :50])
    assert not torch.allclose(a[:, 50:], b[:, 50:])


def test_compare_on_text_scores_bits_per_character(tmp_path, text_file):
    result = nncompare.compare(f"text:{text_file}", models=["gru", "cnn"], seeds=1, config=TrainConfig(max_epochs=2), store=tmp_path, workers=1)
    for row, run in zip(result.rows, result.runs):
        assert row["score_name"] == "test bits/char"
    assert [r["context"] for r in result.rows] == ["unbounded (TBPTT 128)", 13]  # gru, cnn: beside the score
    for run in result.runs:
        assert run["score"] == pytest.approx(run["test_loss"] / math.log(2))

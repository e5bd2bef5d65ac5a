"""Augmentation: what each kind's transform does, that it repeats with the seed, and where it is refused."""

import pytest
import torch

import nncompare
from nncompare.data.base import DatasetMeta
from nncompare.train import TrainConfig
from nncompare.train.augment import _shift, augment, check_augmentable


def test_shift_moves_each_example_by_its_own_amount_with_zero_fill():
    x = torch.arange(1.0, 6.0).repeat(3, 1)[:, :, None]  # (3, 5, 1): 1 2 3 4 5
    out = _shift(x, 1, torch.tensor([0, 2, -1]))[:, :, 0]
    assert out.tolist() == [[1, 2, 3, 4, 5], [0, 0, 1, 2, 3], [2, 3, 4, 5, 0]]


def test_series_are_shifted_scaled_and_noised_repeatably():
    x = torch.randn(8, 50, 2)
    a = augment(x, "series", torch.Generator().manual_seed(0))
    b = augment(x, "series", torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.allclose(a, x)
    # no more than 10% of the length (5 steps) is shifted out: the edges hold zeros only up to there
    zero_columns = (a.abs().sum(2) == 0).sum(1)
    assert int(zero_columns.max()) <= 5


def test_padded_series_keep_zero_padding_and_are_not_shifted():
    x = torch.randn(2, 10, 1)
    lengths = torch.tensor([10, 6])
    x[1, 6:] = 0
    out = augment(x, "series", torch.Generator().manual_seed(1), lengths)
    assert torch.all(out[1, 6:] == 0)
    # in place (no shift): out = scale * x + noise, with scale in [0.9, 1.1] and noise of std 0.05
    for i, n in ((0, 10), (1, 6)):
        xs, os_ = x[i, :n, 0], out[i, :n, 0]
        scale = float((xs * os_).sum() / (xs * xs).sum())  # least squares
        assert 0.85 <= scale <= 1.15 and float((os_ - scale * xs).abs().max()) < 0.25


def test_images_move_by_at_most_an_eighth():
    x = torch.zeros(20, 1, 16, 16)
    x[:, 0, 8, 8] = 1.0
    out = augment(x, "image", torch.Generator().manual_seed(2))
    assert torch.all(out.sum((1, 2, 3)) == 1)  # the pixel moved, nothing else changed
    rows, cols = out[:, 0].flatten(1).argmax(1) // 16, out[:, 0].flatten(1).argmax(1) % 16
    assert (rows - 8).abs().max() <= 2 and (cols - 8).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1


def test_training_with_augmentation_repeats_and_differs_from_without():
    def run(augment):
        _, result = nncompare.train("digits", "cnn", seed=0, config=TrainConfig(max_epochs=2, augment=augment))
        return result.metrics["test_loss"]

    assert run(True) == run(True) and run(True) != run(False)


@pytest.mark.parametrize("kind, task, message", [("text", "per_step", "applies to classification"), ("series", "regress", "applies to classification")])
def test_augmentation_is_refused_where_it_would_change_the_answer(kind, task, message):
    meta = DatasetMeta(name="x", kind=kind, task=task, input_shape=(4, 1), n_classes=0)
    with pytest.raises(nncompare.UserError, match=message):
        check_augmentable(meta)


def test_compare_refuses_augmenting_a_regression_before_storing(tmp_path):
    with pytest.raises(nncompare.UserError, match="augmentation applies to classification"):
        nncompare.compare("adding:20", config=TrainConfig(augment=True), store=tmp_path)
    assert not any(p.is_dir() for p in tmp_path.iterdir()) if tmp_path.exists() else True

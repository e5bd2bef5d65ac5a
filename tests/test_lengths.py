"""Series of varying length: padded at the end plus `lengths`, recurrent and convolutional models give
exactly the outputs of the unpadded series (the padding fools nobody), and the trainer passes lengths."""

import pytest
import torch

from nncompare.data.base import Dataset, DatasetMeta, Split
from nncompare.models import create_model
from nncompare.train import TrainConfig, evaluate, fit

from conftest import series_meta

LENGTHS = [12, 7, 3, 9]


def padded_batch(meta, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), *meta.input_shape, generator=g)
    lengths = torch.tensor(LENGTHS)
    for i, n in enumerate(LENGTHS):
        x[i, n:] = 0.0  # zero padding after the real steps
    return x, lengths


@pytest.mark.parametrize("name", ["cnn", "tcn", "rnn", "lstm", "gru"])
def test_padded_outputs_equal_unpadded_outputs(name):
    meta = series_meta(length=12, channels=2)
    torch.manual_seed(0)
    model = create_model(name, meta).eval()
    x, lengths = padded_batch(meta)
    with torch.no_grad():
        together = model(x, lengths)
        alone = torch.cat([model(x[i : i + 1, :n]) for i, n in enumerate(LENGTHS)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    # and without lengths the padded steps do change the answer (so the test can fail)
    with torch.no_grad():
        assert not torch.allclose(model(x)[1:], alone[1:], atol=1e-4)


def test_equation_cells_honour_lengths_too():
    meta = series_meta(length=12, channels=2)
    torch.manual_seed(0)
    fused = create_model("lstm", meta)
    equations = create_model("lstm", meta, impl="equations")
    equations.load_state_dict(fused.state_dict())
    x, lengths = padded_batch(meta)
    torch.testing.assert_close(equations(x, lengths), fused(x, lengths), atol=1e-5, rtol=0)


def test_mlp_reads_the_padding_as_part_of_its_fixed_size_input():
    meta = series_meta(length=12, channels=2)
    model = create_model("mlp", meta).eval()
    x, lengths = padded_batch(meta)
    with torch.no_grad():
        torch.testing.assert_close(model(x, lengths), model(x))


def test_trainer_passes_lengths_of_every_split():
    meta = series_meta(length=12, channels=2, n_classes=2)
    x, lengths = padded_batch(meta)
    y = (lengths > 6).long()
    split = Split(x=x, y=y, lengths=lengths)
    data = Dataset(train=split, val=split, test=split, meta=meta)
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = create_model("gru", meta)

        def forward(self, x, lengths=None):
            seen.append(None if lengths is None else lengths.tolist())
            return self.inner(x, lengths)

    model = Spy()
    fit(model, data, TrainConfig(max_epochs=1, lr=1e-2, batch_size=4, validation="split"))
    assert seen and all(s is not None and sorted(s) == sorted(LENGTHS) for s in seen)
    loss, acc = evaluate(model, x, y, lengths)
    assert 0 <= acc <= 1 and loss > 0

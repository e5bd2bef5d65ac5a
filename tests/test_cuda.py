"""On a CUDA GPU: every model trains there, the recurrent paths agree there, a run resumed from its
checkpoint (the CUDA random state included) ends as an uninterrupted one, and a comparison with
worker processes, its report, export and predict work from a GPU-trained run. Skipped without a GPU
(CI has none); run on one with `python -m pytest tests/test_cuda.py`."""

import copy
import json

import numpy as np
import pytest
import torch

import nncompare
from nncompare.cli.main import main
from nncompare.data import load_dataset
from nncompare.models import create_model, model_names
from nncompare.train import TrainConfig

from conftest import series_meta

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("name", model_names())
def test_every_model_trains_on_the_gpu(name):
    model, result = nncompare.train("digits", name, config=TrainConfig(max_epochs=4, device="cuda"))  # the model's own rate
    assert next(model.parameters()).device.type == "cuda"
    losses = [row["train_loss"] for row in result.history]
    assert all(v == v for v in losses) and losses[-1] < losses[0]  # no NaN, and it learns
    assert result.metrics["test_acc"] > 0.2  # 10 classes


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("extra", [{}, {"num_layers": 2}])
def test_equations_and_fused_paths_agree_on_the_gpu(cell, extra):
    meta = series_meta(length=40, channels=1, n_classes=10)  # MNIST-1D's shape
    x = torch.randn(16, 40, 1, device="cuda")
    outs, grads = {}, {}
    for impl in ("fused", "equations"):
        torch.manual_seed(0)
        model = create_model(cell, meta, impl=impl, **extra).cuda()
        # cuDNN's RNNs may multiply in TF32 (torch's default for cuDNN), 2-3 significant digits: off here
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            out = model(x)
            out.square().sum().backward()
        outs[impl], grads[impl] = out.detach(), [p.grad.clone() for p in model.parameters()]
    torch.testing.assert_close(outs["equations"], outs["fused"], rtol=1e-4, atol=1e-5)
    for a, b in zip(grads["equations"], grads["fused"]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    assert create_model(cell, meta, **extra).cuda().recurrent.uses_fused()  # the default on the GPU as on the CPU


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_layer_normalised_cell_computes_on_the_gpu_what_it_computes_on_the_cpu(cell):
    """Cells only the equations express (here layer norm) run the same Python loop on either device: the
    same outputs and gradients, in float64 (in float32 the first layer's gradients, some 100 in size, already
    differ from float64's by up to 7e-3 on the CPU alone)."""
    meta = series_meta(length=40, channels=1, n_classes=10)
    torch.manual_seed(0)
    cpu = create_model(cell, meta, num_layers=2, norm="layer").double().train()
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.randn(16, 40, 1, dtype=torch.float64)
    for model, xb in ((cpu, x), (gpu, x.cuda())):
        model(xb).square().sum().backward()
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x))
    for (name, a), b in zip(gpu.named_parameters(), cpu.parameters()):
        torch.testing.assert_close(a.grad.cpu(), b.grad, msg=name)


def test_a_gpu_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path):
    from test_checkpoint import Stop, _same, _train  # tests/ is on sys.path under pytest's default import mode

    ds = load_dataset("digits")
    config = TrainConfig(lr=3e-3, max_epochs=4, device="cuda")  # the MLP's dropout draws from the CUDA generator
    uninterrupted = _train(ds, "mlp", config)[:2]
    with pytest.raises(Stop):
        _train(ds, "mlp", config, tmp_path, stop_at=2)
    torch.cuda.manual_seed_all(12345)
    net, result, checkpoint = _train(ds, "mlp", config, tmp_path, model_seed=99)
    assert checkpoint.resumed_at == 1
    _same(uninterrupted, (net, result))


def test_compare_on_the_gpu_with_workers_then_export_and_predict(tmp_path, capsys):
    comparison = nncompare.compare("digits", models=["cnn", "gru"], seeds=2, workers=2, store=tmp_path, config=TrainConfig(max_epochs=2, device="cuda"), report=True)
    assert len(comparison.runs) == 4 and all(r.get("status") == "done" for r in comparison.runs)
    assert comparison.report_path.stat().st_size > 10_000
    run_dir = comparison.folder / "cnn-seed0"
    assert json.loads((run_dir / "config.json").read_text())["train"]["device"] == "cuda"
    run = nncompare.load_run(run_dir)  # weights stored from the GPU, predicting on the CPU
    data = run.dataset()
    names = run.predict(data.test.x.numpy())
    assert np.mean(names == np.array([str(int(v)) for v in data.test.y])) == pytest.approx(run.metrics["test_acc"], abs=0.01)
    assert main(["export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path / "cnn.pt")]) == 0
    assert (tmp_path / "cnn.pt").stat().st_size > 1000

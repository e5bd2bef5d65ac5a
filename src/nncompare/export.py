"""Export a stored run's model for use outside nncompare: ONNX or TorchScript.

`nncompare export RUN --format onnx|torchscript [--out FILE]` (and `export_run` here) writes one file
whose input is a batch in the data set's natural layout (series (N, L, C), images (N, C, H, W), text
(N, T) character ids, tables (N, F) encoded rows), any N, and whose output is the model's raw output (class scores before the
softmax, or values for regression: in the file's units where the targets were standardised, as
`predict` gives them, `InFileUnits`). After writing, the file is run once on examples of the run's own
data and its outputs are compared with the torch model's; the largest absolute difference is
returned and `nncompare export` prints it (ONNX: with onnxruntime when it is installed).

ONNX uses torch's TorchScript-based exporter (opset 17), which takes well under a second for these
models; a model it cannot express (the per-position MLP's `unfold`) goes through the torch.export-based
exporter instead (needs onnxscript; tens of seconds). Padded series of varying length are exported
without their lengths: the exported model reads the padding as part of the series.
A table's model reads encoded rows (standardised numbers, missing indicators, one-hot categories): the
encoding (data/tables.py) is written beside the file as `<file>.columns.json`, to be applied before it.
These are files nncompare writes and never reads back: weights stay safetensors in the store.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17
CHECK_EXAMPLES = 64  # examples of the run's test split the exported file is checked on
INSTALL_HINT = "pip install 'nncompare[export]' (onnx, onnxruntime, onnxscript)"


def example_inputs(meta, dataset=None, n: int = CHECK_EXAMPLES, seed: int = 0) -> torch.Tensor:
    """A batch to trace and check with: the run's test examples when the data set is at hand, else
    seeded random inputs of the right layout (character ids for text)."""
    if dataset is not None and len(dataset.test):
        return dataset.test.x[:n]
    g = torch.Generator().manual_seed(seed)
    if meta.kind == "text":
        return torch.randint(0, meta.n_classes, (n, *meta.input_shape), generator=g)
    return torch.randn((n, *meta.input_shape), generator=g)


@contextlib.contextmanager
def _quiet():
    """Keep the exporters' chatter (warnings, logged notes, an IR graph printed on a failed try) off the
    user's terminal; what matters is in the exception or in the checked outputs."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    sys.stdout.flush()
    saved_stdout = os.dup(1)  # the failed try's graph is printed by C++, below Python's sys.stdout
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), open(os.devnull, "w") as devnull:
        warnings.simplefilter("ignore")
        os.dup2(devnull.fileno(), 1)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _onnx_bytes(model: torch.nn.Module, x: torch.Tensor) -> bytes:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise UserError(f"ONNX export needs the onnx package; {INSTALL_HINT}") from None
    buf = io.BytesIO()
    names = {"input_names": ["input"], "output_names": ["output"]}
    # the TorchScript-based exporter warns that it is legacy, and about RNN batch sizes (the exported
    # graph takes any batch size: export_run checks it on more examples than it was traced with)
    with _quiet():
        try:
            torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=OPSET, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **names)
            return buf.getvalue()
        except Exception as legacy_error:  # noqa: BLE001 - an operator it cannot express: try the newer exporter
            try:
                import onnxscript  # noqa: F401
            except ImportError:
                raise UserError(f"this model needs torch's torch.export-based ONNX exporter ({type(legacy_error).__name__}: {str(legacy_error)[:120]}); {INSTALL_HINT}") from None
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},), **names)
            return program.model_proto.SerializeToString()


def _torchscript_bytes(model: torch.nn.Module, x: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with _quiet():  # tracer warnings about shapes read as Python numbers
        traced = torch.jit.trace(model, (x,), check_trace=False)
        torch.jit.save(traced, buf)
    return buf.getvalue()


class InFileUnits(torch.nn.Module):
    """A regression model whose targets were standardised on loading (DatasetMeta.target_scaling), with
    the scaling undone in the graph: outputs mean + std * model(x), the values `predict` gives."""

    def __init__(self, model: torch.nn.Module, mean: float, std: float):
        super().__init__()
        self.model, self.mean, self.std = model, float(mean), float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean + self.std * self.model(x)


def export_model(model: torch.nn.Module, meta, fmt: str, x: torch.Tensor | None = None) -> bytes:
    """The model (on CPU, eval mode) as ONNX or TorchScript bytes, traced with `x` (default: random inputs)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'; valid choices: {', '.join(FORMATS)}")
    model = model.cpu().eval()
    x = example_inputs(meta, n=2) if x is None else x[:2]  # traced on 2 examples, used with any number
    with torch.no_grad():
        return _onnx_bytes(model, x) if fmt == "onnx" else _torchscript_bytes(model, x)


def run_exported(data: bytes, fmt: str, x: torch.Tensor) -> np.ndarray | None:
    """Outputs of an exported file on `x`; None for ONNX when onnxruntime is not installed."""
    if fmt == "torchscript":
        loaded = torch.jit.load(io.BytesIO(data))
        with torch.no_grad():
            return loaded(x).numpy()
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def max_difference(model: torch.nn.Module, data: bytes, fmt: str, x: torch.Tensor) -> float | None:
    """Largest absolute difference between the exported file's outputs and the torch model's on `x`."""
    got = run_exported(data, fmt, x)
    if got is None:
        return None
    with torch.no_grad():
        want = model.cpu().eval()(x).numpy()
    if got.shape != want.shape:
        raise UserError(f"the exported {fmt} model gives outputs of shape {got.shape}, the torch model {want.shape}; please report this")
    return float(np.abs(got - want).max())


def export_run(run_dir, fmt: str = "onnx", out=None) -> dict:
    """Export the stored run in `run_dir`; writes `out` (default: model.onnx / model.pt in the run
    folder) and returns {"out", "format", "max_abs_diff" (None: not checked), "checked_on"}."""
    from .store import load_run
    from .utils import atomic_write_bytes

    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}'; valid choices: {', '.join(FORMATS)}")
    run = load_run(run_dir)
    try:
        dataset = run.dataset()
    except UserError:  # the data moved away: check on random inputs of the right layout instead
        dataset = None
    x = example_inputs(run.meta, dataset)
    model = InFileUnits(run.model, **run.meta.target_scaling) if run.meta.target_scaling else run.model
    data = export_model(model, run.meta, fmt, x)
    out = Path(out) if out is not None else run.path / f"model{SUFFIX[fmt]}"
    if out.is_dir():
        raise UserError(f"'{out}' is a folder; give `out` a file name such as {out / ('model' + SUFFIX[fmt])}")
    atomic_write_bytes(out, data)
    done = {"out": out, "format": fmt, "max_abs_diff": max_difference(model, data, fmt, x), "checked_on": f"{len(x)} {'test examples' if dataset is not None else 'random inputs'}"}
    if run.meta.kind == "table":  # the exported graph reads encoded rows; the encoding goes beside it as JSON
        import json

        from .utils import atomic_write_text

        encoding = out.with_name(out.name + ".columns.json")
        atomic_write_text(encoding, json.dumps(run.meta.columns, indent=1) + "\n")
        done["encoding"] = encoding
    return done

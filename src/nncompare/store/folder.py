"""One run's folder: writing its files atomically, reading them back, and rebuilding its model
(`load_run`); nothing is ever unpickled. The layout is described in store/index.py."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..utils import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    state_mismatch,
)

RUN_FILES = ("config.json", "metrics.json", "history.csv", "model.safetensors")  # a finished run has all four


TIMING_KEYS = ("train_seconds", "inference_per_second", "finished")  # metrics measured by the clock: timing.json


FINAL_STATUSES = ("done", "diverged")  # a run with metrics.json; "failed" runs leave failure.json


def write_run(run_dir: Path, config: dict, metrics: dict, history: list[dict], model, timing: dict | None = None) -> None:
    """Write one run's files atomically; the weights as safetensors, metrics.json last (its presence
    marks a finished run). What the clock measured (TIMING_KEYS, each epoch's seconds, and `timing`)
    goes to timing.json, so that metrics.json and history.csv repeat byte for byte."""
    from safetensors.torch import save

    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    measured = {k: metrics[k] for k in TIMING_KEYS if k in metrics}
    measured["epoch_seconds"] = [row.get("seconds") for row in history]
    measured.update(timing or {})
    atomic_write_bytes(run_dir / "model.safetensors", save(tensors, metadata={"format": "pt"}))
    atomic_write_text(run_dir / "history.csv", history_csv([{k: v for k, v in row.items() if k != "seconds"} for row in history]))
    atomic_write_json(run_dir / "config.json", config)
    atomic_write_json(run_dir / "timing.json", measured)
    atomic_write_json(run_dir / "metrics.json", {k: v for k, v in metrics.items() if k not in TIMING_KEYS})


def write_failure(run_dir: Path, record: dict) -> None:
    """A run that raised: its reason in failure.json (a resume tries it again and removes the file)."""
    atomic_write_json(Path(run_dir) / "failure.json", record)


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """metrics.json with timing.json merged in (the dict `execute` returned); UserError if unreadable."""
    path = Path(run_dir)
    metrics = _read_json(path / "metrics.json", "the run did not finish; run the comparison again")
    if not isinstance(metrics, dict):
        raise UserError(f"'{path / 'metrics.json'}' does not hold a JSON object; train the run again")
    timing_path = path / "timing.json"
    if timing_path.exists():
        timing = _read_json(timing_path, "")
        if isinstance(timing, dict):
            metrics.update({k: timing[k] for k in TIMING_KEYS if k in timing})
    return metrics


def history_csv(history: list[dict]) -> str:
    buf = io.StringIO()
    if history:
        fields = list(dict.fromkeys(k for row in history for k in row))  # refit rows add "phase", lack val_*
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
    return buf.getvalue()


@dataclass
class StoredRun:
    """A finished run read back from its folder: the trained model (eval mode) and its records."""

    path: Path
    model: object  # torch.nn.Module, set by load_run
    config: dict  # config.json: dataset, data_options, dataset_meta, model, model_args, seed, train, versions
    metrics: dict  # metrics.json
    history: list[dict]  # history.csv rows, numbers as floats where they parse

    @property
    def meta(self):
        from ..data.base import DatasetMeta

        d = dict(self.config["dataset_meta"])
        d["input_shape"] = tuple(d["input_shape"])
        return DatasetMeta(**d)

    def dataset(self):
        """The run's data set, loaded again with the options it was trained with (deterministic)."""
        from ..data import load_dataset

        return load_dataset(self.config["dataset"], **self.config.get("data_options", {}))

    def predict(self, x, lengths=None):
        """Predictions for inputs `x` in the data set's layout (series (N, L, C) or (N, L) for one
        channel, images (N, C, H, W)): class names (ids when the data set names none), or values for
        regression. A run trained on series of varying length also takes shorter series: zero-padded
        to L with their real steps in `lengths` (N,), or an array of fewer steps. See `nncompare.predict`."""
        from ..models.inference import predictions

        return predictions(self.model, self.meta, x, lengths)

    def predict_proba(self, x, lengths=None):
        """Class probabilities for inputs `x`: (N, K), or (N, T, K) for one label per position;
        `lengths` as for `predict`."""
        from ..models.inference import probabilities

        return probabilities(self.model, self.meta, x, lengths)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"run folder '{path.parent}' has no {path.name}: {what}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"'{path}' is corrupt ({e}); train the run again") from None


def read_history(path: Path, timing_path: Path | None = None) -> list[dict]:
    """history.csv's rows, numbers as floats, each with its "seconds" from timing.json when known."""
    if not path.exists():
        return []
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k] = float(v) if v not in ("", None) else None
                except (TypeError, ValueError):
                    parsed[k] = v
            rows.append(parsed)
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"'{path}' is corrupt ({e}); train the run again") from None
    seconds = []
    if timing_path is not None and timing_path.exists():
        try:
            seconds = json.loads(timing_path.read_text(encoding="utf-8")).get("epoch_seconds") or []
        except (OSError, ValueError, AttributeError):
            seconds = []
    if len(seconds) == len(rows):
        for row, sec in zip(rows, seconds):
            row["seconds"] = sec
    return rows


def load_run(run_dir: str | os.PathLike) -> StoredRun:
    """Read a stored run and rebuild its trained model; nothing is unpickled.

    The model is built from config.json with `create_model`, then its weights are read from
    model.safetensors; every tensor's name, shape and dtype must match the model built from the
    config, so a tampered, truncated or mismatched file gives a UserError, never a half-loaded model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    from ..models import create_model
    from ..models.registry import stored_model_args

    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"no run folder '{run_dir}'; `nncompare runs` lists the stored runs")
    metrics = read_metrics(path)
    config = _read_json(path / "config.json", "the run folder is incomplete; run the comparison again")
    try:
        tensors = load_safetensors((path / "model.safetensors").read_bytes())
    except FileNotFoundError:
        raise UserError(f"run folder '{path}' has no model.safetensors; run the comparison again") from None
    except (SafetensorError, ValueError, OSError) as e:
        raise UserError(f"'{path / 'model.safetensors'}' is not a readable safetensors file ({e}); train the run again") from None
    run = StoredRun(path=path, model=None, config=config, metrics=metrics, history=read_history(path / "history.csv", path / "timing.json"))
    try:
        model = create_model(config["model"], run.meta, **stored_model_args(config["model"], config.get("model_args", {})))
    except (KeyError, TypeError) as e:
        raise UserError(f"'{path / 'config.json'}' does not describe a model nncompare can build ({e}); train the run again") from None
    problem = state_mismatch(tensors, model.state_dict())
    if problem:
        raise UserError(f"'{path / 'model.safetensors'}' does not match its config ({problem}); train the run again")
    model.load_state_dict(tensors)
    model.eval()
    run.model = model
    return run

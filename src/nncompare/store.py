"""Run folders and the SQLite index.

Layout under the store root (default ./nncompare-runs, or $NNCOMPARE_STORE, or --store):

    index.sqlite                      comparisons and runs, one row each (WAL mode)
    <comparison id>/comparison.json   what was asked: data set, models, seeds, training config
    <comparison id>/summary.json      the aggregated table, written when the comparison ends
    <comparison id>/<model>-seed<k>/  config.json, metrics.json, history.csv, model.safetensors

Every file is written atomically (temporary file, then rename); weights are safetensors, never pickle.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .utils import atomic_write_bytes, atomic_write_json, atomic_write_text

DEFAULT_STORE = "nncompare-runs"

SCHEMA = """
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    dataset TEXT NOT NULL,
    models TEXT NOT NULL,
    seeds INTEGER NOT NULL,
    status TEXT NOT NULL,
    path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    comparison_id TEXT NOT NULL REFERENCES comparisons(id),
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    test_acc REAL,
    params INTEGER,
    train_seconds REAL,
    epochs INTEGER,
    path TEXT NOT NULL,
    PRIMARY KEY (comparison_id, model, seed)
);
"""


def store_root(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("NNCOMPARE_STORE") or DEFAULT_STORE)


class Store:
    """A store root: run folders plus `index.sqlite`."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = store_root(root)
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"store '{self.root}' exists and is not a folder; pass --store with a folder path")

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(self.index_path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise UserError(f"run index '{self.index_path}' cannot be read ({e}); move it away and run again") from None
        return con

    # -- comparisons -----------------------------------------------------------------------------
    def new_comparison(self, dataset: str, models: list[str], seeds: int, spec: dict) -> Path:
        """Create the comparison folder and its index row; returns the folder."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset)
        base = f"{stamp}-{safe}"
        self.root.mkdir(parents=True, exist_ok=True)
        for k in range(1, 10_000):  # mkdir is atomic: two processes never get the same folder
            folder = self.root / (base if k == 1 else f"{base}-{k}")
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        atomic_write_json(folder / "comparison.json", spec)
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?)",
                (folder.name, time.strftime("%Y-%m-%d %H:%M:%S"), dataset, ",".join(models), seeds, "running", str(folder)),
            )
        return folder

    def finish_comparison(self, folder: Path, summary: dict, status: str = "done") -> None:
        atomic_write_json(folder / "summary.json", summary)
        with closing(self._connect()) as con, con:
            con.execute("UPDATE comparisons SET status = ? WHERE id = ?", (status, folder.name))

    # -- runs --------------------------------------------------------------------------------------
    def index_run(self, comparison: Path, run_dir: Path, model: str, seed: int, metrics: dict, status: str = "done") -> None:
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    comparison.name,
                    model,
                    seed,
                    status,
                    metrics.get("test_acc"),
                    metrics.get("params"),
                    metrics.get("train_seconds"),
                    metrics.get("epochs"),
                    str(run_dir),
                ),
            )

    def list_comparisons(self) -> list[dict]:
        if not self.index_path.exists():
            return []
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM comparisons ORDER BY created, id")]

    def list_runs(self, comparison_id: str | None = None) -> list[dict]:
        if not self.index_path.exists():
            return []
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            if comparison_id is None:
                rows = con.execute("SELECT * FROM runs ORDER BY comparison_id, model, seed")
            else:
                rows = con.execute("SELECT * FROM runs WHERE comparison_id = ? ORDER BY model, seed", (comparison_id,))
            return [dict(r) for r in rows]


def write_run(run_dir: Path, config: dict, metrics: dict, history: list[dict], model) -> None:
    """Write one run's four files atomically; the weights as safetensors."""
    from safetensors.torch import save

    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(run_dir / "model.safetensors", save(tensors, metadata={"format": "pt"}))
    atomic_write_text(run_dir / "history.csv", history_csv(history))
    atomic_write_json(run_dir / "config.json", config)
    atomic_write_json(run_dir / "metrics.json", metrics)  # last: its presence marks a finished run


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
        from .data.base import DatasetMeta

        d = dict(self.config["dataset_meta"])
        d["input_shape"] = tuple(d["input_shape"])
        return DatasetMeta(**d)

    def dataset(self):
        """The run's data set, loaded again with the options it was trained with (deterministic)."""
        from .data import load_dataset

        return load_dataset(self.config["dataset"], **self.config.get("data_options", {}))

    def predict(self, x):
        """Predictions for inputs `x` in the data set's layout (series (N, L, C) or (N, L) for one
        channel, images (N, C, H, W)): class names (ids when the data set names none), or values for
        regression. See `nncompare.predict`."""
        from .predict import predictions

        return predictions(self.model, self.meta, x)

    def predict_proba(self, x):
        """Class probabilities for inputs `x`: (N, K), or (N, T, K) for one label per position."""
        from .predict import probabilities

        return probabilities(self.model, self.meta, x)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"run folder '{path.parent}' has no {path.name}: {what}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"'{path}' is corrupt ({e}); train the run again") from None


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
        parsed = {}
        for k, v in row.items():
            try:
                parsed[k] = float(v) if v not in ("", None) else None
            except ValueError:
                parsed[k] = v
        rows.append(parsed)
    return rows


def load_run(run_dir: str | os.PathLike) -> StoredRun:
    """Read a stored run and rebuild its trained model; nothing is unpickled.

    The model is built from config.json with `create_model`, then its weights are read from
    model.safetensors; every tensor's name, shape and dtype must match the model built from the
    config, so a tampered, truncated or mismatched file gives a UserError, never a half-loaded model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    from .models import create_model

    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"no run folder '{run_dir}'; `nncompare runs` lists the stored runs")
    metrics = _read_json(path / "metrics.json", "the run did not finish; run the comparison again")
    config = _read_json(path / "config.json", "the run folder is incomplete; run the comparison again")
    try:
        tensors = load_safetensors((path / "model.safetensors").read_bytes())
    except FileNotFoundError:
        raise UserError(f"run folder '{path}' has no model.safetensors; run the comparison again") from None
    except (SafetensorError, ValueError, OSError) as e:
        raise UserError(f"'{path / 'model.safetensors'}' is not a readable safetensors file ({e}); train the run again") from None
    run = StoredRun(path=path, model=None, config=config, metrics=metrics, history=_read_history(path / "history.csv"))
    try:
        model = create_model(config["model"], run.meta, **config.get("model_args", {}))
    except (KeyError, TypeError) as e:
        raise UserError(f"'{path / 'config.json'}' does not describe a model nncompare can build ({e}); train the run again") from None
    expected = model.state_dict()
    if set(expected) != set(tensors):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise UserError(f"'{path / 'model.safetensors'}' does not match its config (missing {missing[:3]}, unexpected {extra[:3]}); train the run again")
    for name, want in expected.items():
        got = tensors[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise UserError(
                f"'{path / 'model.safetensors'}': tensor {name} is {tuple(got.shape)} {got.dtype}, the config needs "
                f"{tuple(want.shape)} {want.dtype}; train the run again"
            )
    model.load_state_dict(tensors)
    model.eval()
    run.model = model
    return run

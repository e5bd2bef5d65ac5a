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
import os
import sqlite3
import time
from contextlib import closing
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

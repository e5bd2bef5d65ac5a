"""Run folders and the SQLite index.

Layout under the store root (default ./nncompare-runs, or $NNCOMPARE_STORE, or --store):

    index.sqlite                      comparisons and runs, one row each (WAL mode)
    <comparison id>/comparison.json   what was asked: data set, models, seeds, training config
    <comparison id>/summary.json      the aggregated table, written when the comparison ends
    <comparison id>/<model>-seed<k>/  config.json, metrics.json, history.csv, model.safetensors, timing.json
                                      (while training: checkpoint.json + checkpoint-<epoch>.safetensors;
                                      a run that raised: failure.json)

metrics.json and history.csv hold what the run computed and nothing else, so the same command gives
them byte for byte again; what the clock measured (training seconds, seconds per epoch, inference
speed, when it finished, the epoch a killed run was resumed from) goes to timing.json. `load_run` and
`read_metrics` merge the two back, so a reader sees one dict as before.

Every file is written atomically (temporary file, then rename); weights are safetensors, never pickle.
The index is written in short transactions that wait for each other (WAL mode), so several processes
can add runs to one store at once; a comparison folder is locked while a process works in it."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path

from ..errors import UserError
from ..utils import atomic_write_json

DEFAULT_STORE = "nncompare-runs"


LOCK_FILE = ".lock"


LOCKED_RETRIES = 20


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
            raise UserError(f"store '{self.root}' exists and is not a folder; give `store` a folder path")

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        for attempt in range(LOCKED_RETRIES):
            try:
                con = sqlite3.connect(self.index_path, timeout=30)
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
                return con
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise UserError(f"run index '{self.index_path}' cannot be opened ({e}); check the folder's permissions and free space") from None
                time.sleep(0.05 * (attempt + 1))  # another process is creating the index or switching it to WAL
            except sqlite3.DatabaseError as e:
                raise UserError(f"run index '{self.index_path}' cannot be read ({e}); move it away and run again") from None
        raise UserError(f"run index '{self.index_path}' stayed locked by another process; try again")

    def _write(self, sql: str, params: tuple) -> None:
        """One statement in its own transaction. sqlite waits up to 30 s for another writer; a lock it
        does not wait for (two processes switching a new index to WAL) is retried here."""
        for attempt in range(LOCKED_RETRIES):
            try:
                with closing(self._connect()) as con, con:
                    con.execute(sql, params)
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise UserError(f"run index '{self.index_path}' stayed locked by another process; try again")

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
        self.index_comparison(folder, dataset, models, seeds, "running")
        return folder

    def index_comparison(self, folder: Path, dataset: str, models: list[str], seeds: int, status: str) -> None:
        """The comparison's index row, added or (on resume) its status set; its created time is kept."""
        self._write(
            "INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status = excluded.status, path = excluded.path",
            (folder.name, time.strftime("%Y-%m-%d %H:%M:%S"), dataset, ",".join(models), seeds, status, str(folder)),
        )

    def finish_comparison(self, folder: Path, summary: dict, status: str = "done") -> None:
        atomic_write_json(folder / "summary.json", summary)
        self._write("UPDATE comparisons SET status = ? WHERE id = ?", (status, folder.name))

    # -- runs --------------------------------------------------------------------------------------
    def index_run(self, comparison: Path, run_dir: Path, model: str, seed: int, metrics: dict, status: str = "done") -> None:
        self._write(
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


@contextmanager
def comparison_lock(folder: Path):
    """Hold the comparison folder for this process: a second `nncompare compare --resume` of the same
    folder (or two at once) is refused instead of training the same runs twice. An OS file lock, so a
    killed process releases it; where there is none (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    path = Path(folder) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise UserError(
            f"comparison '{folder}' is being run by another nncompare process{f' (pid {holder})' if holder else ''}; "
            f"wait for it to finish (or stop it), then run this again"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def is_locked(folder: Path) -> bool:
    """Whether a live process holds the comparison folder (see `comparison_lock`)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return False
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False

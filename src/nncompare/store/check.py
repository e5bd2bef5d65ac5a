"""`nncompare runs --check`: read every file of a store back and report what is missing, corrupt or
inconsistent, instead of letting a later command use it silently.

Errors (exit code 1) are files that are there but wrong, or missing where they must be: a finished
run without one of its four files, JSON that does not parse, weights that do not match config.json
(names, shapes, dtypes: `load_run` checks them), a history whose length disagrees with metrics.json,
a damaged checkpoint, an index row without its folder or a finished run folder without its row.
Notes are what an interrupted comparison normally leaves: unfinished runs (resumable), the stray
temporary file of a write a kill cut short (never read, safe to delete), a comparison whose process
is gone.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..train.checkpoint import CHECKPOINT_JSON, stray_files
from . import FINAL_STATUSES, RUN_FILES, is_locked, load_run, read_metrics, store_root

REQUIRED_METRICS = ("model", "seed", "status", "epochs", "score", "score_name", "stop_reason")


@dataclass
class Finding:
    path: str
    message: str
    error: bool  # False: a note (nothing is wrong, but the user should know)

    def line(self) -> str:
        return f"{'error' if self.error else 'note'}: {self.path}: {self.message}"


def check_run(run_dir: Path) -> list[str]:
    """What is wrong with a finished run's folder (empty: nothing). Reads every file back."""
    run_dir = Path(run_dir)
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    try:
        metrics = read_metrics(run_dir)
        absent = [k for k in REQUIRED_METRICS if k not in metrics]
        if absent:
            return [f"metrics.json lacks {', '.join(absent)}"]
        run = load_run(run_dir)  # config.json parses, and builds a model the weights fit exactly
    except UserError as e:
        return [str(e)]
    problems = []
    if (run.config.get("model"), run.config.get("seed")) != (metrics["model"], metrics["seed"]):
        problems.append(f"config.json is for {run.config.get('model')} seed {run.config.get('seed')}, metrics.json for {metrics['model']} seed {metrics['seed']}")
    if len(run.history) != metrics["epochs"]:
        problems.append(f"history.csv has {len(run.history)} epochs, metrics.json says {metrics['epochs']}")
    return problems


def _checkpoint_problem(run_dir: Path) -> tuple[str | None, int | None]:
    """(what is wrong with an unfinished run's checkpoint, the epoch it holds)."""
    from ..train.checkpoint import _sha256

    try:
        info = json.loads((run_dir / CHECKPOINT_JSON).read_text(encoding="utf-8"))
        name, digest, epoch = info["tensors"], info["sha256"], int(info["epoch"])
        data = (run_dir / Path(name).name).read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"its checkpoint cannot be read ({type(e).__name__}: {e}); a resume starts this run over", None
    if _sha256(data) != digest:
        return f"its checkpoint {name} does not match its recorded SHA-256; a resume starts this run over", None
    return None, epoch


def _read_index(root: Path) -> tuple[dict, dict, list[Finding]]:
    """(comparisons by id, runs by (id, model, seed), findings), reading the index without changing it."""
    path = root / "index.sqlite"
    if not path.exists():
        return {}, {}, []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            con.row_factory = sqlite3.Row
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                return {}, {}, [Finding(str(path), f"the index is damaged ({ok}); move it away, then resume each comparison to index it again", True)]
            comparisons = {r["id"]: dict(r) for r in con.execute("SELECT * FROM comparisons")}
            runs = {(r["comparison_id"], r["model"], r["seed"]): dict(r) for r in con.execute("SELECT * FROM runs")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        return {}, {}, [Finding(str(path), f"the index cannot be read ({e}); move it away, then resume each comparison to index it again", True)]
    return comparisons, runs, []


def _check_comparison(folder: Path, row: dict | None, index_runs: dict) -> tuple[list[Finding], int]:
    """Findings for one comparison folder and the number of run folders looked at."""
    out: list[Finding] = []
    try:
        spec = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
        models, seeds = list(spec["models"]), list(spec["seeds"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [Finding(str(folder), f"comparison.json is missing or corrupt ({type(e).__name__}); this folder cannot be used or resumed", True)], 0
    if row is None:
        out.append(Finding(str(folder), "the comparison is not in the index; resume it (nncompare compare ... --resume FOLDER) to index it again", True))
    status = row["status"] if row else None
    if status == "running" and not is_locked(folder):
        out.append(Finding(str(folder), f"marked running but no process is working on it (killed?); resume it with the same command plus --resume {folder}", False))
    if (folder / "summary.json").exists():
        try:
            json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            out.append(Finding(str(folder / "summary.json"), f"corrupt ({e}); resume the comparison to write it again", True))
    elif status == "done":
        out.append(Finding(str(folder), "finished but has no summary.json; resume the comparison to write it again", True))
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") and f.name.endswith(".tmp"):
            out.append(Finding(str(f), "temporary file of a write that was cut short; never read, safe to delete", False))
    # order-sensitivity runs (compare --order) live in <model>-permuted-seed<k> and are indexed as <model>-permuted
    labels = models + ([f"{m}-permuted" for m in models] if spec.get("order") else [])
    expected = {f"{m}-seed{s}": (m, s) for m in labels for s in seeds}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name not in expected:
            out.append(Finding(str(d), f"a folder this comparison does not have runs for (models {','.join(models)}, seeds {seeds})", True))
    n_runs = 0
    for name, (model, seed) in expected.items():
        run_dir = folder / name
        indexed = index_runs.get((folder.name, model, seed))
        n_runs += run_dir.is_dir()
        out.extend(_check_one_run(run_dir, model, seed, indexed, status))
    for (cid, model, seed), r in index_runs.items():
        if cid == folder.name and f"{model}-seed{seed}" not in expected:
            out.append(Finding(str(folder), f"the index has a run {model} seed {seed} this comparison does not have", True))
    return out, n_runs


def _check_one_run(run_dir: Path, model: str, seed: int, indexed: dict | None, comparison_status: str | None) -> list[Finding]:
    out = [Finding(str(f), "left over from a write that was cut short; never read, safe to delete", False) for f in stray_files(run_dir)]
    where = str(run_dir)
    if (run_dir / "metrics.json").exists():
        problems = check_run(run_dir)
        out.extend(Finding(where, p, True) for p in problems)
        if not problems:
            status = read_metrics(run_dir)["status"]
            if indexed is None:
                out.append(Finding(where, "a finished run missing from the index; resume the comparison to index it again", True))
            elif indexed["status"] != status:
                out.append(Finding(where, f"the index says {indexed['status']!r}, metrics.json says {status!r}; resume the comparison to index it again", True))
        return out
    if (run_dir / "failure.json").exists():
        try:
            reason = json.loads((run_dir / "failure.json").read_text(encoding="utf-8")).get("error", "?")
            out.append(Finding(where, f"failed: {reason} (a resume tries it again)", False))
        except (OSError, ValueError, AttributeError) as e:
            out.append(Finding(where, f"failure.json is corrupt ({e})", True))
        return out
    if (run_dir / CHECKPOINT_JSON).exists():
        problem, epoch = _checkpoint_problem(run_dir)
        out.append(Finding(where, problem, True) if problem else Finding(where, f"unfinished, checkpointed after epoch {epoch}; a resume goes on from there", False))
    elif indexed is not None and indexed["status"] in FINAL_STATUSES:
        out.append(Finding(where, f"the index lists it as {indexed['status']} but its folder holds no metrics.json; resume the comparison to train it again", True))
    elif comparison_status == "done":
        out.append(Finding(where, "the comparison is marked done but this run has no results; resume the comparison to train it", True))
    elif run_dir.is_dir() or comparison_status in ("running", "interrupted"):
        out.append(Finding(where, "not finished and no checkpoint yet; a resume trains it from the start", False))
    return out


def check_store(root=None, comparison: str | None = None) -> tuple[list[Finding], dict]:
    """Every finding for the store at `root` (or one comparison of it), and counts of what was read."""
    root = store_root(root)
    if not root.is_dir():
        raise UserError(f"no store at '{root}'; give `store` the folder that holds index.sqlite")
    comparisons, runs, findings = _read_index(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if comparison is not None:
        if comparison not in comparisons and not (root / comparison).is_dir():
            raise UserError(f"no comparison '{comparison}' in store '{root}'; 'nncompare runs' lists them")
        folders = [root / comparison] if (root / comparison).is_dir() else []
    n_runs = 0
    for folder in folders:
        if not (folder / "comparison.json").exists():
            findings.append(Finding(str(folder), "not a comparison folder (no comparison.json): a comparison that was killed as it started, or not nncompare's", True))
            continue
        found, n = _check_comparison(folder, comparisons.get(folder.name), runs)
        findings.extend(found)
        n_runs += n
    on_disk = {f.name for f in folders}
    for cid, row in sorted(comparisons.items()):
        if (comparison is None or cid == comparison) and cid not in on_disk:
            findings.append(Finding(str(root / cid), "in the index but its folder is gone", True))
    for f in sorted(root.iterdir()):
        if f.name.startswith(".") and f.name.endswith(".tmp"):
            findings.append(Finding(str(f), "temporary file of a write that was cut short; never read, safe to delete", False))
    return findings, {"comparisons": len([f for f in folders if (f / "comparison.json").exists()]), "runs": n_runs}


__all__ = ["check_run", "check_store", "Finding"]

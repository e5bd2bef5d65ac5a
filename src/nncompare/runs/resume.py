"""Resuming a comparison: find its folder, refuse options that differ from the stored ones, and tell
finished runs (skipped) from unfinished ones (trained again from their last checkpoint).

A comparison is resumed with the command that started it plus `--resume DIR` (`resume=DIR` from
Python). Every option that decides a number must be the one stored in comparison.json: resuming
with another epoch budget would mix runs of two different comparisons in one table. Only how the
work is spread (`--workers`) and what is shown (`--quiet`) may change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..store import FINAL_STATUSES, read_metrics, store_root

# comparison.json keys that do not decide any number, so a resume may differ in them
FREE_KEYS = ("workers", "threads_per_worker")


def locate(resume, store) -> Path:
    """The comparison folder `resume` names: a path, or a comparison id inside the store."""
    path = Path(str(resume)).expanduser()
    if not path.is_dir():
        candidate = store_root(store) / str(resume)
        if not candidate.is_dir():
            raise UserError(f"`resume`: no comparison folder '{resume}' (nor '{candidate}'); 'nncompare runs' lists the stored comparisons")
        path = candidate
    if not (path / "comparison.json").is_file():
        raise UserError(f"`resume`: '{path}' is not a comparison folder (it has no comparison.json); give the folder a comparison printed when it started")
    if store is not None and Path(store).expanduser().resolve() != path.parent.resolve():
        raise UserError(f"`resume`: '{path}' is not in the store '{store}'; leave out `store` (the folder's own store, '{path.parent}', is used)")
    return path


def stored_spec(folder: Path) -> dict:
    try:
        spec = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"'{folder / 'comparison.json'}' cannot be read ({e}); this comparison cannot be resumed, start a new one") from None
    if not isinstance(spec, dict) or "models" not in spec or "seeds" not in spec:
        raise UserError(f"'{folder / 'comparison.json'}' is not a comparison description; this comparison cannot be resumed, start a new one")
    return spec


def _as_json(value):
    """Tuples as lists, numbers as JSON has them: the form a stored value is read back in."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _differences(stored, given, path: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(given, dict):
        out = []
        for key in sorted(set(stored) | set(given)):
            where = f"{path}.{key}" if path else key
            if key not in given:
                out.append(f"{where} is stored but not given")
            elif key not in stored:
                continue  # a key newer versions record; nothing to compare it with
            else:
                out.extend(_differences(stored[key], given[key], where))
        return out
    return [] if stored == given else [f"{path}: stored {stored!r}, this command {given!r}"]


def check_same_options(folder: Path, stored: dict, spec: dict) -> None:
    """UserError naming the options in which `spec` (this command) differs from the stored comparison."""
    a = {k: v for k, v in _as_json(stored).items() if k not in FREE_KEYS}
    b = {k: v for k, v in _as_json(spec).items() if k not in FREE_KEYS}
    diffs = _differences(a, b)
    if diffs:
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise UserError(
            f"`resume` '{folder}': this command differs from the one that started the comparison: {'; '.join(diffs[:3])}{more}; "
            f"give the same data and options (only `workers`, and how progress is shown, may change), or leave out `resume` to start a new comparison"
        )


def stored_tuning(folder: Path, stored: dict, trials: int | None, budget: float | None) -> dict:
    """The search a resumed comparison already did (so it is not done again), checked against tune/budget."""
    tuning = stored.get("tuning") or {}
    search = stored.get("search") or {}
    if not search and tuning:  # written before budgets existed: trials only
        search = {"trials": next(iter(tuning.values())).get("trials"), "budget": None}
    had = (search.get("trials"), search.get("budget"))
    if had != (trials, budget):
        def says(t, b):
            given = ([f"`tune={t}`"] if t is not None else []) + ([f"`budget={b:g}`"] if b is not None else [])
            return " and ".join(given) or "no search (tune and budget None)"

        raise UserError(f"`resume` '{folder}': the comparison was started with {says(*had)}; give the same, or leave out `resume`")
    return tuning


def data_fingerprint(dataset) -> str:
    """SHA-256 of every split's inputs and targets: a resume refuses data that changed on disk."""
    h = hashlib.sha256()
    for split in (dataset.train, dataset.val, dataset.test):
        for t in (split.x, split.y, split.lengths):
            if t is not None:
                a = np.ascontiguousarray(t.numpy())
                h.update(str((a.dtype.str, a.shape)).encode("ascii"))
                h.update(a.tobytes())
    return h.hexdigest()


def finished_run(run_dir: Path, model: str, seed: int) -> tuple[dict | None, str | None]:
    """(metrics, None) for a run that finished and whose files are sound; (None, note) for one whose
    files are not, which is then trained again (the note says why); (None, None) for an unfinished run."""
    from ..store.check import check_run

    if not (run_dir / "metrics.json").exists():
        return None, None
    problems = check_run(run_dir)
    if not problems:
        try:
            metrics = read_metrics(run_dir)
        except UserError as e:
            problems = [str(e)]
        else:
            if metrics.get("model") == model and metrics.get("seed") == seed and metrics.get("status") in FINAL_STATUSES:
                return metrics, None
            problems = [f"its metrics.json is for {metrics.get('model')} seed {metrics.get('seed')} with status {metrics.get('status')!r}"]
    for name in ("metrics.json", "timing.json"):  # no longer looks finished, even if this process is killed now
        (run_dir / name).unlink(missing_ok=True)
    return None, f"run {model} seed {seed} in '{run_dir}' is damaged ({problems[0]}); it is trained again"

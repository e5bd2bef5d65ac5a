"""The comparison grid: every (model, seed) pair trained under the same rules, in parallel workers,
stored, then aggregated over seeds into one table."""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import queue as queue_module
import signal
import statistics
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .data import load_dataset
from .errors import UserError
from .models import count_parameters, create_model, get_model_info, match_parameters, model_names
from .runner import RunSpec, config_for_model, execute, resolved_model_args
from . import resume as resuming
from .store import Store, comparison_lock, write_failure
from .train import TrainConfig
from .train.checkpoint import install_stop_event, stop_requested
from .train.loop import resolve_device
from .utils import available_cores

# Recurrent runs take longest (a sequential loop over time), so they start first: with a few workers
# the longest jobs first keeps the cores busy until the end (LPT scheduling).
FAMILY_COST = {"recurrent": 0, "convolutional": 1, "feed-forward": 2}
ORDER_SEED = 0  # the permutation of input positions used by order=True (the same for every run)

ProgressCallback = Callable[[dict], None]


@dataclass
class Comparison:
    """What `compare` returns: the aggregated rows (one per model), every run's metrics, the folder."""

    dataset: str
    rows: list[dict]
    runs: list[dict]
    folder: Path | None
    best: str | None
    wall_seconds: float
    config: dict = field(default_factory=dict)
    separation: dict | None = None  # the best two models compared at the 95% level (see `separation`)
    order: list[dict] | None = None  # with order=True: the rows of the runs on shuffled positions
    report: tuple | None = None  # (report.html, report.md) when the report was written

    ROW_COLUMNS = ("model", "family", "params", "lr", "score_name", "score_mean", "score_std", "score_ci95", "n_runs", "n_done", "train_seconds", "epochs", "inference_per_second")

    def dataframe(self, runs: bool = False):
        """The table as a pandas DataFrame indexed by model (score_mean, score_std, score_ci95 are
        fractions for accuracy, as in summary.json); `runs=True`: one row per (model, seed) run."""
        import pandas as pd

        if runs:
            return pd.DataFrame(self.runs)
        return pd.DataFrame([{k: r.get(k) for k in self.ROW_COLUMNS} for r in self.rows], columns=list(self.ROW_COLUMNS)).set_index("model")

    @property
    def report_path(self) -> Path | None:
        """report.html of this comparison, when it was written (compare(..., report=True))."""
        return Path(self.report[0]) if self.report else None

    def table(self) -> str:
        """The comparison as plain text (the CLI draws the same rows with rich)."""
        heading = score_heading(self.rows[0]["score_name"]) + " (mean ± std)" if self.rows else ""
        header = f"{'model':6} {'params':>8} {'lr':>7} {heading:>23} {'95% CI':>16} {'train s':>8} {'infer/s':>10}"
        lines = [header]
        for r in self.rows:
            mark = "  ← best" if r["model"] == self.best else ""
            lines.append(
                f"{r['model']:6} {r['params']:>8,} {r['lr']:>7g} {format_score(r):>23} {format_ci(r):>16} {r['train_seconds']:>8.1f} {r['inference_per_second']:>10,.0f}{mark}"
            )
        if self.separation:
            lines.append(separation_line(self.separation, self.rows[0]["score_name"]))
        return "\n".join(lines)


def score_heading(score_name: str) -> str:
    return "test acc %" if score_name == "test accuracy" else score_name


def format_score(row: dict) -> str:
    """"96.7 ± 0.4" (accuracy in percent) or "0.0012 ± 0.0003" (a loss), with failed runs counted."""
    diverged = row.get("n_diverged", 0)
    failed = row["n_runs"] - row["n_done"] - diverged
    if row["n_done"] == 0:
        return "diverged" if diverged and not failed else "failed"
    if row["score_name"] == "test accuracy":
        text = f"{100 * row['score_mean']:.1f} ± {100 * row['score_std']:.1f}"
    else:
        text = f"{row['score_mean']:.4g} ± {row['score_std']:.2g}"
    lost = [f"{k} {what}" for k, what in ((failed, "failed"), (diverged, "diverged")) if k]
    if lost:
        text += f" ({', '.join(lost)})"
    return text


def format_ci(row: dict) -> str:
    """The 95% confidence interval of the mean score, "[95.1, 98.3]"; "-" with fewer than two seeds."""
    half = row.get("score_ci95", math.nan)
    if row["n_done"] < 2 or not math.isfinite(half):
        return "-"
    lo, hi = row["score_mean"] - half, row["score_mean"] + half
    if row["score_name"] == "test accuracy":  # an accuracy lies in [0, 100]%, whatever the t-interval says
        return f"[{100 * max(lo, 0.0):.1f}, {100 * min(hi, 1.0):.1f}]"
    return f"[{lo:.3g}, {hi:.3g}]"


def separation_line(sep: dict | None, score_name: str) -> str:
    """One sentence: are the best two models told apart at the 95% level?"""
    if sep is None:
        return ""
    diff = abs(sep["difference"])
    gap = f"{100 * diff:.1f} points" if score_name == "test accuracy" else f"{diff:.3g}"
    head = f"{sep['first']} vs {sep['second']}: {gap} apart, Welch t-test p = {sep['p_value']:.2g}"
    if sep["distinguishable"]:
        return f"{head}: distinguishable at 95%"
    return f"{head}: not distinguishable at 95%; more seeds (--seeds) would tell"


def aggregate(runs: list[dict], models: list[str], learning_rates: dict) -> list[dict]:
    """One row per model: the score (test accuracy, or test MSE for regression) as mean and sample std
    over the finished seeds, and the mean cost."""
    rows = []
    for m in models:
        mine = sorted((r for r in runs if r["model"] == m), key=lambda r: r["seed"])  # seed order, not finishing order
        done = [r for r in mine if r.get("status") == "done"]

        def mean(key):
            vals = [r[key] for r in done if r.get(key) is not None]
            return statistics.fmean(vals) if vals else math.nan

        scores = [r["score"] for r in done]
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        rows.append(
            {
                "model": m,
                "family": get_model_info(m).family,
                "lr": learning_rates[m],
                "n_runs": len(mine),
                "n_done": len(done),
                "n_diverged": sum(r.get("status") == "diverged" for r in mine),
                "params": next((r["params"] for r in mine if r.get("params")), 0),
                "score_name": next((r["score_name"] for r in done), "test accuracy"),
                "higher_is_better": next((r["higher_is_better"] for r in done), True),
                "score_mean": statistics.fmean(scores) if scores else math.nan,
                "score_std": std,
                "score_ci95": ci95_half_width(std, len(scores)),
                "scores": scores,
                "train_seconds": mean("train_seconds"),
                "epochs": mean("epochs"),
                "inference_per_second": mean("inference_per_second"),
                "context": next((r["context"] for r in done if "context" in r), None),  # text: characters seen per prediction
            }
        )
    return rows


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95% confidence interval of a mean of `n` seeds (Student's t); NaN below 2."""
    if n < 2:
        return math.nan
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n))


def separation(rows: list[dict]) -> dict | None:
    """Whether the best two models' scores over seeds differ at the 95% level (Welch's t-test, which
    does not assume equal spreads). None when fewer than two models have two finished seeds each."""
    ranked = [r for r in rows if r["n_done"] >= 2]
    if len(ranked) < 2:
        return None
    sign = 1 if ranked[0]["higher_is_better"] else -1
    first, second = sorted(ranked, key=lambda r: -sign * r["score_mean"])[:2]
    a, b = first["scores"], second["scores"]
    if statistics.stdev(a) == 0 and statistics.stdev(b) == 0:  # no spread: the t statistic is undefined
        p_value = 0.0 if first["score_mean"] != second["score_mean"] else 1.0
    else:
        import warnings

        from scipy.stats import ttest_ind

        with warnings.catch_warnings():  # identical scores in one group make scipy warn about precision
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(ttest_ind(a, b, equal_var=False).pvalue)
    return {
        "first": first["model"],
        "second": second["model"],
        "difference": first["score_mean"] - second["score_mean"],
        "p_value": p_value,
        "distinguishable": p_value < 0.05,
    }


def parse_models(models) -> list[str]:
    if models is None:
        return model_names()
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    models = [m for m in models if m]
    if not models:
        raise UserError(f"no models given; choose from {', '.join(model_names())}")
    for m in models:
        get_model_info(m)  # raises UserError listing the valid names
    if len(set(models)) != len(models):
        raise UserError(f"a model is listed twice in {','.join(models)}; list each once")
    return models


def _main_is_importable() -> bool:
    """Worker processes are spawned, and spawning re-imports the caller's main script by its path; a
    script read from standard input (`python - < script.py`) has none, so it cannot have workers."""
    import os
    import sys

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


GUARD_HINT = 'a script that calls nncompare.compare must call it under `if __name__ == "__main__":` (worker processes import the script again)'


def _refuse_while_a_worker_starts() -> None:
    """A spawned worker process imports the caller's main script again before it takes any work; a
    script that calls compare at its top level, outside `if __name__ == "__main__":`, would then start
    a comparison inside every worker. Say so there, in one line, and end that process (exit code 2)
    instead of multiprocessing's traceback; the parent then records its runs as failed, naming the same
    fix (`_inheriting` is the flag multiprocessing itself checks for this, set while a child starts)."""
    if getattr(mp.current_process(), "_inheriting", False):
        import sys

        print(f"nncompare: compare() was called while a worker process was starting: {GUARD_HINT}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def plan_workers(n_runs: int, workers: int | None) -> tuple[int, int]:
    """(worker processes, torch threads per run).

    Threads per run depend only on the cores and the number of runs, never on `workers`: a float sum
    split over a different number of threads rounds differently, so tying threads to the worker count
    would make `--workers 1` give other numbers than the default. With at least as many runs as cores
    every run gets one thread and the cores go to parallel runs, which is faster for small models.
    """
    cores = available_cores()
    threads = max(1, cores // min(cores, n_runs))
    if workers is None:
        workers = min(cores, n_runs) if _main_is_importable() else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"workers must be a positive whole number, got {workers!r}")
    return min(workers, n_runs), threads


# -- worker side ------------------------------------------------------------------------------------
_progress_queue = None


def _init_worker(progress_queue, stop, parent_pid: int) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    # Ctrl-C reaches the whole process group; the main process decides what stops: it sets `stop`,
    # which every run checks after each step (train/checkpoint.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    install_stop_event(stop)
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker when the main process is gone (killed with SIGKILL, say): an orphan would keep
    training and writing into the run folder while a resume works there."""

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_in_worker(spec: RunSpec) -> dict:
    if stop_requested():  # stopping: a run that has not started does not start
        return {"model": spec.model, "seed": spec.seed, "status": "interrupted"}

    def on_epoch(row):
        _progress_queue.put({"event": "epoch", "model": spec.label, "seed": spec.seed, **row})

    _progress_queue.put({"event": "start", "model": spec.label, "seed": spec.seed})
    return _run_guarded(spec, on_epoch)


def _run_guarded(spec: RunSpec, on_epoch) -> dict:
    """Run; a failure of this run is recorded with its reason instead of ending the comparison."""
    try:
        return execute(spec, on_epoch=on_epoch)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - crash isolation: the other runs go on
        return {"model": spec.model, "seed": spec.seed, "status": "failed", "error": f"{type(e).__name__}: {e}"}


# -- main side ------------------------------------------------------------------------------------
def compare(
    data: str,
    models=None,
    seeds: int = 3,
    config: TrainConfig | None = None,
    model_args: dict | None = None,
    store: str | Path | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    data_options: dict | None = None,
    params: int | None = None,
    tune: int | None = None,
    order: bool = False,
    report: bool = False,
    resume: str | Path | None = None,
    backend: str = "local",
    address: str | None = None,
    mlflow: str | None = None,
) -> Comparison:
    """Train every model in `models` (default: all registered) with seeds 0..seeds-1 on `data` and
    aggregate test accuracy over seeds. Runs are stored under one comparison folder in `store` and
    indexed in its SQLite file. `model_args` maps a model name to hyperparameter overrides;
    `data_options` are the data loader's keywords (see `load_dataset`). `params`, when given, sizes
    every model to about that many trainable parameters (within 5%) by solving for its width.
    `tune`, when given, spends that many Optuna trials per model on its learning rate (and its width,
    unless `params` or the model's arguments fix it), chosen on validation loss before the seeded runs.
    `order` also trains every (model, seed) on the same data with its input positions shuffled by one
    fixed permutation (order sensitivity; stored as `<model>-permuted-seed<k>`, summarised under
    "order"). `report` writes report.html and report.md into the comparison folder at the end.

    `resume`, a comparison folder (or its id in the store): go on with that comparison, which must
    have been started with the same data and options; finished runs are kept, the others go on from
    their last epoch-end checkpoint, and the result is the one an uninterrupted comparison gives.

    The first Ctrl-C (SIGINT) stops every run after its current step and raises
    ComparisonInterrupted, which names the folder to resume; a second one stops at once.

    `progress`, when given, receives events: {"event": "plan", ...}, {"event": "start" | "epoch" |
    "done", "model", "seed", ...}, {"event": "note", "text"}, {"event": "stopping"}.

    `backend="ray"` runs each (model, seed) as a Ray task on the cluster at `address` (backends/ray.py);
    `mlflow`, a tracking URI, also logs every run's parameters, metrics and files there (tracking.py).
    """
    _refuse_while_a_worker_starts()
    config = (config or TrainConfig()).validate()
    run_elsewhere = _check_backend(backend, address)  # before anything is stored
    start_tracking = _tracker_factory(mlflow)
    resolve_device(config.device)  # refuse a device that is not there before anything is stored
    models = parse_models(models)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UserError(f"seeds must be a positive whole number of runs per model, got {seeds!r}")
    if seeds > MAX_SEEDS:
        raise UserError(f"seeds {seeds} is more runs per model than nncompare will plan (at most {MAX_SEEDS}); a 95% interval is already narrow at 30")
    folder, stored = None, None
    if resume is not None:
        folder = resuming.locate(resume, store)
        stored, store = resuming.stored_spec(folder), folder.parent
    model_args = dict(model_args or {})
    for name in model_args:
        if name not in models:
            raise UserError(f"model arguments given for '{name}', which is not among the models compared ({', '.join(models)})")

    data_options = dict(data_options or {})
    dataset = load_dataset(data, **data_options)  # validates the name; generated data is cached for the workers
    check_batch_size(config, dataset)
    if config.augment:
        from .train.augment import check_augmentable

        check_augmentable(dataset.meta)  # before anything is stored
    if order:
        from .analysis.order import permuted_dataset

        permuted_dataset(dataset, ORDER_SEED)  # refuses data whose positions cannot be shuffled, before anything is stored
    if config.labels is not None:
        from .train.semi import check_semi

        check_semi(dataset, config)  # before anything is stored
    if params is not None:
        for m in models:
            width = get_model_info(m).width
            if width in model_args.get(m, {}):
                raise UserError(f"'{m}' is given both a parameter budget and its {width}; give one of the two")
            model_args[m] = match_parameters(m, dataset.meta, params, **model_args.get(m, {}))
    tuning = {}
    if tune is not None:
        if isinstance(tune, bool) or not isinstance(tune, int) or tune < 1:
            raise UserError(f"tune must be a positive whole number of trials, got {tune!r}")
        if config.lr is not None:
            raise UserError("--tune chooses each model's learning rate; leave out --lr (or leave out --tune)")
        if config.validation == "none":
            raise UserError("--tune scores its trials on the validation split; it cannot be combined with --no-validation")
        if stored is not None:
            tuning = resuming.stored_tuning(folder, stored, tune)  # tuned when it started: not again
        else:
            tuning = _tune_all(data, models, tune, config, model_args, data_options, params, workers, progress or (lambda e: None))
        for m, chosen in tuning.items():
            width = get_model_info(m).width
            if width in chosen:
                model_args[m] = {**model_args.get(m, {}), width: chosen[width]}
    param_counts = {}
    for m in models:  # builds each model once, without memory: bad hyperparameters fail here, before any training
        param_counts[m] = count_parameters(build_on_meta(m, dataset.meta, **model_args.get(m, {})))
    check_model_memory(param_counts, dataset)

    learning_rates = {m: tuning[m]["lr"] if m in tuning else config_for_model(config, m).lr for m in models}
    jobs = [(m, s, v) for v in ([""] + (["permuted"] if order else [])) for m in models for s in range(seeds)]
    jobs.sort(key=lambda msv: FAMILY_COST[get_model_info(msv[0]).family])
    n_workers, threads = plan_workers(len(jobs), workers)

    st = Store(store)
    train_fields = {k: v for k, v in config.to_dict().items() if k != "seed"}
    spec = {
        "dataset": data,
        "data_options": data_options,
        "dataset_meta": dataset.meta.to_dict(),
        "sizes": dataset.sizes(),
        "data_sha256": resuming.data_fingerprint(dataset),
        "models": models,
        "seeds": list(range(seeds)),
        "train": train_fields,
        "learning_rates": learning_rates,
        "model_args": {m: resolved_model_args(m, model_args.get(m, {})) for m in models},
        "params_target": params,
        "order": order,  # order-sensitivity runs on shuffled positions too
        "tuning": tuning,  # per model: the chosen values, their validation loss, the number of trials
        "workers": n_workers,
        "threads_per_worker": threads,
    }
    if backend != "local":
        spec["backend"] = {"name": backend, "address": address}
    if stored is not None:
        resuming.check_same_options(folder, stored, spec)
        threads = stored.get("threads_per_worker", threads)  # the threads the finished runs had: the same sums
    else:
        folder = st.new_comparison(data, models, seeds, spec)
    with comparison_lock(folder):
        if stored is not None:
            st.index_comparison(folder, data, models, seeds, "running")
        tracker = start_tracking(folder, spec) if start_tracking else None
        return _run_grid(st, folder, spec, jobs, threads, n_workers, tuning, train_fields, model_args, data_options, param_counts, learning_rates, progress, order, report, run_elsewhere, tracker)


def _run_grid(st, folder, spec, jobs, threads, n_workers, tuning, train_fields, model_args, data_options, param_counts, learning_rates, progress, order=False, report=False, run_elsewhere=None, tracker=None) -> Comparison:
    """Train the runs of `jobs` that have not finished in `folder`, aggregate, write the summary."""
    data, models = spec["dataset"], spec["models"]
    emit = progress or (lambda event: None)
    specs = [
        RunSpec(
            dataset=data,
            model=m,
            seed=s,
            train={**train_fields, "lr": learning_rates[m]} if m in tuning else train_fields,
            model_args=model_args.get(m, {}),
            data_options={**data_options, "permute": ORDER_SEED} if v else data_options,
            run_dir=str(folder / (f"{m}-{v}-seed{s}" if v else f"{m}-seed{s}")),
            threads=threads,
            variant=v,
        )
        for m, s, v in jobs
    ]
    runs: list[dict] = []
    permuted_runs: list[dict] = []

    def record(spec_: RunSpec, metrics: dict) -> None:
        metrics.setdefault("params", param_counts[spec_.model])
        (permuted_runs if spec_.variant else runs).append(metrics)
        if metrics.get("status") == "failed":
            write_failure(Path(spec_.run_dir), metrics)
        st.index_run(folder, Path(spec_.run_dir), spec_.label, spec_.seed, metrics, metrics.get("status", "done"))
        if tracker is not None:
            tracker.log_run(spec_, metrics)
        for note in metrics.get("notes", []):
            emit({"event": "note", "text": note})
        emit({"event": "done", **metrics, "model": spec_.label})

    tidy_comparison(folder, specs)
    to_run = []
    for sp in specs:  # a resumed comparison keeps its finished runs (their files checked first)
        metrics, note = resuming.finished_run(Path(sp.run_dir), sp.model, sp.seed)
        if note:
            emit({"event": "note", "text": note})
        if metrics is None:
            to_run.append(sp)
        else:
            metrics.setdefault("params", param_counts[sp.model])
            (permuted_runs if sp.variant else runs).append(metrics)
            st.index_run(folder, Path(sp.run_dir), sp.label, sp.seed, metrics, metrics["status"])
    n_workers = min(n_workers, max(1, len(to_run)))
    emit({"event": "plan", "runs": len(specs), "skipped": len(specs) - len(to_run), "workers": n_workers if run_elsewhere is None else "Ray", "threads": threads, "folder": str(folder), "max_epochs": spec["train"]["max_epochs"]})

    start = time.perf_counter()
    status = "interrupted"
    # set by the first Ctrl-C; seen by every worker process (a multiprocessing Event), or only by this one
    stop = mp.get_context("spawn").Event() if n_workers > 1 else threading.Event()
    try:
        with _first_interrupt_stops(stop, emit):
            if not to_run:
                pass
            elif run_elsewhere is not None:
                run_elsewhere(to_run, emit, record)
            elif n_workers == 1:
                _run_here(to_run, emit, record, stop)
            else:
                _run_pool(longest_first(to_run, param_counts), n_workers, emit, record, stop)
        if not stop.is_set():
            status = "done"
    except KeyboardInterrupt:  # the second Ctrl-C: the workers were ended at once
        pass
    finally:
        rows = aggregate(runs, models, learning_rates)
        done_rows = [r for r in rows if r["n_done"]]
        best = None
        if done_rows:
            sign = 1 if done_rows[0]["higher_is_better"] else -1
            best = max(done_rows, key=lambda r: sign * r["score_mean"])["model"]
        sep = separation(rows)
        order_rows = aggregate(permuted_runs, models, learning_rates) if order else None
        result = Comparison(
            dataset=data, rows=rows, runs=runs, folder=folder, best=best, wall_seconds=time.perf_counter() - start, config=spec, separation=sep, order=order_rows
        )
        summary = {"rows": rows, "best": best, "separation": sep, "wall_seconds": result.wall_seconds, "status": status}
        if order_rows is not None:
            summary["order"] = order_rows
        st.finish_comparison(folder, summary, status)
        if tracker is not None:
            tracker.finish(result, status)
    if status == "interrupted":
        finished = sum(r.get("status") in ("done", "diverged", "failed") for r in runs + permuted_runs)
        raise ComparisonInterrupted(folder, finished, len(specs))
    if report and done_rows:
        from .report import build_report

        emit({"event": "report", "folder": str(folder)})
        try:
            result.report = build_report(folder)
        except Exception as e:  # noqa: BLE001 - the runs are stored; a failed report must not hide them
            emit({"event": "report_failed", "error": f"{type(e).__name__}: {e}", "folder": str(folder)})
    return result


def tidy_comparison(folder: Path, specs: list[RunSpec]) -> None:
    """Remove what a killed process leaves behind (temporary files of cut-short writes, unreferenced
    checkpoint tensors); safe because this process holds the comparison's lock."""
    from .train.checkpoint import stray_files

    debris = [f for f in folder.iterdir() if f.name.startswith(".") and f.name.endswith(".tmp")]
    for sp in specs:
        debris.extend(stray_files(Path(sp.run_dir)))
    for f in debris:
        f.unlink(missing_ok=True)


class ComparisonInterrupted(KeyboardInterrupt):
    """A comparison stopped by Ctrl-C: the runs in flight stopped after their current step, their
    last epoch-end checkpoints kept. Resume with `compare(..., resume=folder)` (CLI: --resume)."""

    def __init__(self, folder: Path, finished: int, total: int):
        super().__init__(f"comparison interrupted after {finished} of {total} runs; resume it with resume='{folder}'")
        self.folder, self.finished, self.total = folder, finished, total


MAX_SEEDS = 1000


def check_batch_size(config: TrainConfig, dataset) -> None:
    """A batch size the user chose that is larger than the training split is a mistake (the default,
    128, is cut to a smaller split's size, as documented)."""
    n = len(dataset.train)
    if config.batch_size > n and config.batch_size != TrainConfig.batch_size:
        raise UserError(f"batch size {config.batch_size} is larger than the {n} training examples of {dataset.meta.name}; choose at most {n}")


def build_on_meta(name: str, meta, **model_args):
    """The model built on the meta device: its structure and parameter count, no memory for weights.
    Bad hyperparameters fail here as they would in a real build."""
    import torch

    with torch.device("meta"):
        return create_model(name, meta, **model_args)


def check_model_memory(param_counts: dict, dataset) -> None:
    """Refuse models whose training state alone would not fit in memory: weights, gradients, Adam's two
    moments, the best weights kept by early stopping and a checkpoint copy (6 float32 copies)."""
    from .limits import check_fits

    for m, count in param_counts.items():
        check_fits(6 * 4 * count, f"training {m} ({count:,} parameters)", "choose a smaller --width, --layers or --params")


def _check_backend(backend: str, address: str | None):
    """None for the local backend, else the function that runs the specs there; refuses a backend that
    is unknown or not installed before anything is stored."""
    from .backends import BACKENDS

    if backend not in BACKENDS:
        raise UserError(f"unknown backend '{backend}'; valid choices: {', '.join(BACKENDS)}")
    if backend == "local":
        if address is not None:
            raise UserError("an address is for --backend ray; add --backend ray or leave --address out")
        return None
    from .backends.ray import import_ray, run_on_ray

    import_ray()
    return lambda specs, emit, record: run_on_ray(specs, emit, record, address, gpu=any(str(sp.train.get("device", "cpu")).startswith("cuda") for sp in specs))


def _tracker_factory(uri: str | None):
    """None without a tracking URI; else a function (folder, spec) -> tracker; MLflow is checked now."""
    if uri is None:
        return None
    from .tracking import MlflowTracker

    return MlflowTracker.connect(uri)  # an unreachable server fails here, before anything is stored


def _tune_all(data, models, trials, config, model_args, data_options, params, workers, emit) -> dict:
    """Tune every model with the same number of trials, models in parallel worker processes."""
    from .tune import tune_model

    train = {k: v for k, v in config.to_dict().items() if k not in ("seed", "lr")}
    jobs = {}
    for m in models:
        width = get_model_info(m).width
        tune_width = params is None and width not in model_args.get(m, {})
        jobs[m] = (data, m, trials, train, model_args.get(m, {}), data_options, tune_width)
    n_workers, threads = plan_workers(len(models), workers)
    emit({"event": "tune", "models": models, "trials": trials, "workers": n_workers})
    tuning = {}
    if n_workers == 1:
        import torch

        caller_threads = torch.get_num_threads()
        try:
            for m, job in jobs.items():
                tuning[m] = tune_model(*job, threads)  # the same threads as in a worker: the same numbers
                emit({"event": "tuned", "model": m, **tuning[m]})
        finally:
            torch.set_num_threads(caller_threads)
        return tuning
    ctx = mp.get_context("spawn")
    with _sigint_ignored():
        pool = ProcessPoolExecutor(n_workers, mp_context=ctx)
        futures = {pool.submit(tune_model, *job, threads): m for m, job in jobs.items()}
    try:
        for fut in as_completed(futures):
            m = futures[fut]
            tuning[m] = fut.result()
            emit({"event": "tuned", "model": m, **tuning[m]})
    except BaseException:
        _stop_now(pool)
        raise
    pool.shutdown()
    return {m: tuning[m] for m in models}


# the order workers take runs in: a recurrent model's sequential loop makes its runs the longest,
# a feed-forward model's the shortest (MNIST-1D, 1 thread: GRU 41 s, CNN 18 s, MLP 17 s a run)
FAMILY_COST_RANK = {"recurrent": 0, "convolutional": 1, "feed-forward": 2}


def longest_first(specs: list[RunSpec], param_counts: dict) -> list[RunSpec]:
    """`specs` in the order a pool should start them: the runs expected to take longest first (recurrent,
    then convolutional, then feed-forward; the larger model first within a family), so that the runs
    left when the first workers fall idle are short ones. In the listed order (models as given, GRU
    last), the default MNIST-1D comparison ended with one GRU run alone on one of two workers. The sort
    is stable (seeds stay in order) and changes only the order, never a run's numbers."""
    return sorted(specs, key=lambda sp: (FAMILY_COST_RANK.get(get_model_info(sp.model).family, 1), -param_counts.get(sp.model, 0)))


def _run_here(specs: list[RunSpec], emit, record, stop) -> None:
    """Run one after another in this process; the caller's torch thread count is restored afterwards."""
    import torch

    caller_threads = torch.get_num_threads()
    install_stop_event(stop)
    try:
        for sp in specs:
            if stop.is_set():
                break
            emit({"event": "start", "model": sp.label, "seed": sp.seed})
            record(sp, _run_guarded(sp, lambda row, sp=sp: emit({"event": "epoch", "model": sp.label, "seed": sp.seed, **row})))
    finally:
        install_stop_event(None)
        torch.set_num_threads(caller_threads)


def _run_pool(specs: list[RunSpec], n_workers: int, emit, record, stop) -> None:
    """Run in worker processes. A worker that dies (the out-of-memory killer, a crash in native code)
    breaks the whole pool, and which run it was training is not known: the runs that were in flight
    then go one at a time, each in a pool of its own, resuming from their checkpoints. A run whose own
    worker dies then is recorded as failed; every other run goes on."""
    remaining, suspects, idle_breaks = list(specs), [], 0
    while (remaining or suspects) and not stop.is_set():
        if suspects:
            sp = suspects.pop(0)
            if _pool_round([sp], 1, emit, record, stop)[0]:  # its own worker died: this run did it
                error = "its worker process died twice, the second time running alone (killed by the system? out of memory?)"
                record(sp, {"model": sp.model, "seed": sp.seed, "status": "failed", "error": error})
            continue
        lost, started = _pool_round(remaining, n_workers, emit, record, stop)
        suspects = [sp for sp in lost if (sp.label, sp.seed) in started]
        remaining = [sp for sp in lost if (sp.label, sp.seed) not in started]
        if suspects:
            emit({"event": "note", "text": f"a worker process died; the {len(suspects)} run(s) in flight go on from their checkpoints, one at a time"})
        elif lost:
            idle_breaks += 1  # workers that die before starting any run would otherwise be restarted forever
            if idle_breaks >= 2:
                for sp in remaining:
                    record(sp, {"model": sp.model, "seed": sp.seed, "status": "failed", "error": f"worker processes die before they start a run ({GUARD_HINT}, and nncompare must import in a fresh Python)"})
                emit({"event": "note", "text": f"{len(remaining)} run(s) failed: worker processes die before they start one; {GUARD_HINT}"})
                return


def _pool_round(specs: list[RunSpec], n_workers: int, emit, record, stop) -> tuple[list[RunSpec], set]:
    """One pool over `specs`: (the runs a dead worker took down with the pool, the runs that had started)."""
    ctx = mp.get_context("spawn")  # no fork: torch's thread pools do not survive a fork safely
    progress_queue = ctx.Queue()
    started: set[tuple] = set()

    def relay(event):
        if event.get("event") == "start":
            started.add((event["model"], event["seed"]))
        emit(event)

    with _sigint_ignored():  # workers start with Ctrl-C ignored, even before their initializer runs
        pool = ProcessPoolExecutor(min(n_workers, len(specs)), mp_context=ctx, initializer=_init_worker, initargs=(progress_queue, stop, os.getpid()))
        pending = {pool.submit(_run_in_worker, sp): sp for sp in specs}
    lost: list[RunSpec] = []
    try:
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, relay)
            if stop.is_set():
                for fut in pending:
                    fut.cancel()  # runs not started yet never start; the running ones stop after a step
            for fut in finished:
                sp = pending.pop(fut)
                if fut.cancelled():
                    continue
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append(sp)
                    continue
                record(sp, result)
        _drain(progress_queue, relay)
    except BaseException:
        # a second Ctrl-C or a run that raised a UserError: stop now rather than wait for the runs in
        # flight (their folders have no metrics.json, the file written last, so they never pass as finished)
        _stop_now(pool)
        raise
    pool.shutdown()
    return lost, started


def _stop_now(pool) -> None:
    """End a process pool without waiting for the work in flight: cancel the queue, end the workers."""
    workers = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.terminate()


@contextlib.contextmanager
def _first_interrupt_stops(stop, emit):
    """While the grid runs, the first Ctrl-C sets `stop` (every run ends after its current step, its
    last checkpoint kept, and no new run starts); a second one raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        emit({"event": "stopping"})

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while worker processes are launched: an ignored signal stays ignored in a spawned
    child, and Python then installs no KeyboardInterrupt handler, so a Ctrl-C while a worker is still
    importing torch cannot print a traceback from it. The main thread gets its handler back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _drain(progress_queue, emit) -> None:
    while True:
        try:
            emit(progress_queue.get_nowait())
        except queue_module.Empty:
            return

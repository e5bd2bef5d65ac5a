"""The comparison grid: every (model, seed) pair trained under the same rules, in parallel workers,
stored, then aggregated over seeds into one table."""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue as queue_module
import signal
import statistics
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .data import load_dataset
from .errors import UserError
from .models import count_parameters, create_model, get_model_info, match_parameters, model_names
from .runner import RunSpec, config_for_model, execute, resolved_model_args
from .store import Store
from .train import TrainConfig
from .train.loop import resolve_device
from .utils import available_cores, set_seed

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
    if row["n_done"] == 0:
        return "failed"
    if row["score_name"] == "test accuracy":
        text = f"{100 * row['score_mean']:.1f} ± {100 * row['score_std']:.1f}"
    else:
        text = f"{row['score_mean']:.4g} ± {row['score_std']:.2g}"
    if row["n_done"] < row["n_runs"]:
        text += f" ({row['n_runs'] - row['n_done']} failed)"
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


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    # Ctrl-C reaches the whole process group; the main process decides what stops (it ends the workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(spec: RunSpec) -> dict:
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

    `progress`, when given, receives events: {"event": "plan", ...}, {"event": "start" | "epoch" |
    "done", "model", "seed", ...}.

    `backend="ray"` runs each (model, seed) as a Ray task on the cluster at `address` (backends/ray.py);
    `mlflow`, a tracking URI, also logs every run's parameters, metrics and files there (tracking.py).
    """
    config = (config or TrainConfig()).validate()
    run_elsewhere = _check_backend(backend, address)  # before anything is stored
    start_tracking = _tracker_factory(mlflow)
    resolve_device(config.device)  # refuse a device that is not there before anything is stored
    models = parse_models(models)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UserError(f"seeds must be a positive whole number of runs per model, got {seeds!r}")
    model_args = dict(model_args or {})
    for name in model_args:
        if name not in models:
            raise UserError(f"model arguments given for '{name}', which is not among the models compared ({', '.join(models)})")

    data_options = dict(data_options or {})
    dataset = load_dataset(data, **data_options)  # validates the name; generated data is cached for the workers
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
        tuning = _tune_all(data, models, tune, config, model_args, data_options, params, workers, progress or (lambda e: None))
        for m, chosen in tuning.items():
            width = get_model_info(m).width
            if width in chosen:
                model_args[m] = {**model_args.get(m, {}), width: chosen[width]}
    param_counts = {}
    for m in models:  # builds each model once: bad hyperparameters fail here, before any training
        set_seed(0)
        param_counts[m] = count_parameters(create_model(m, dataset.meta, **model_args.get(m, {})))

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
        "models": models,
        "seeds": list(range(seeds)),
        "train": train_fields,
        "learning_rates": learning_rates,
        "model_args": {m: resolved_model_args(m, model_args.get(m, {})) for m in models},
        "params_target": params,
        "tuning": tuning,  # per model: the chosen values, their validation loss, the number of trials
        "workers": n_workers,
        "threads_per_worker": threads,
    }
    if backend != "local":
        spec["backend"] = {"name": backend, "address": address}
    folder = st.new_comparison(data, models, seeds, spec)
    tracker = start_tracking(folder, spec) if start_tracking else None
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
    emit = progress or (lambda event: None)
    emit({"event": "plan", "runs": len(specs), "workers": n_workers if backend == "local" else "Ray", "threads": threads, "folder": str(folder), "max_epochs": config.max_epochs})

    start = time.perf_counter()
    runs: list[dict] = []
    permuted_runs: list[dict] = []

    def record(spec_: RunSpec, metrics: dict) -> None:
        metrics.setdefault("params", param_counts[spec_.model])
        (permuted_runs if spec_.variant else runs).append(metrics)
        st.index_run(folder, Path(spec_.run_dir), spec_.label, spec_.seed, metrics, metrics.get("status", "done"))
        if tracker is not None:
            tracker.log_run(spec_, metrics)
        emit({"event": "done", **metrics, "model": spec_.label})

    status = "interrupted"
    try:
        if run_elsewhere is not None:
            run_elsewhere(specs, emit, record)
        elif n_workers == 1:
            _run_here(specs, emit, record)
        else:
            _run_pool(specs, n_workers, emit, record)
        status = "done"
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
    if report and done_rows:
        from .report import build_report

        emit({"event": "report", "folder": str(folder)})
        try:
            result.report = build_report(folder)
        except Exception as e:  # noqa: BLE001 - the runs are stored; a failed report must not hide them
            emit({"event": "report_failed", "error": f"{type(e).__name__}: {e}", "folder": str(folder)})
    if tracker is not None:
        tracker.finish(result, status)
    return result


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


def _run_here(specs: list[RunSpec], emit, record) -> None:
    """Run one after another in this process; the caller's torch thread count is restored afterwards."""
    import torch

    caller_threads = torch.get_num_threads()
    try:
        for sp in specs:
            emit({"event": "start", "model": sp.label, "seed": sp.seed})
            record(sp, _run_guarded(sp, lambda row, sp=sp: emit({"event": "epoch", "model": sp.label, "seed": sp.seed, **row})))
    finally:
        torch.set_num_threads(caller_threads)


def _run_pool(specs: list[RunSpec], n_workers: int, emit, record) -> None:
    ctx = mp.get_context("spawn")  # no fork: torch's thread pools do not survive a fork safely
    progress_queue = ctx.Queue()
    with _sigint_ignored():  # workers start with Ctrl-C ignored, even before their initializer runs
        pool = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(progress_queue,))
        pending = {pool.submit(_run_in_worker, sp): sp for sp in specs}
    try:
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, emit)
            for fut in finished:
                sp = pending.pop(fut)
                record(sp, fut.result())
        _drain(progress_queue, emit)
    except BaseException:
        # interrupted or a run raised a UserError: stop now rather than wait for the runs in flight
        # (their folders have no metrics.json, the file written last, so they never pass as finished)
        _stop_now(pool)
        raise
    pool.shutdown()


def _stop_now(pool) -> None:
    """End a process pool without waiting for the work in flight: cancel the queue, end the workers."""
    workers = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        proc.terminate()


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

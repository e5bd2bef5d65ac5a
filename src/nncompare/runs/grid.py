"""The comparison grid: every (model, seed) pair trained under the same rules, in parallel workers,
stored, then aggregated over seeds into one table."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..data import load_dataset
from ..errors import UserError
from ..models import (
    count_parameters,
    create_model,
    get_model_info,
    match_parameters,
    models_for_data,
    parse_models,
)
from ..results import Comparison, aggregate, best_models, separation
from ..store import Store, comparison_lock, write_failure
from ..train import TrainConfig
from ..train.protocol import planned_epochs, protocol_note, unused_fitted_loss_note
from ..train.steps import resolve_device
from . import resume as resuming
from .runner import RunSpec, config_for_model, resolved_model_args
from .workers import (
    FAMILY_COST,
    first_interrupt_stops,
    longest_first,
    plan_workers,
    refuse_while_a_worker_starts,
    run_here,
    run_pool,
    sigint_ignored,
    stop_now,
)

ORDER_SEED = 0  # the permutation of input positions used by order=True (the same for every run)
ProgressCallback = Callable[[dict], None]


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
    budget: float | None = None,
    order: bool = False,
    report: bool = False,
    resume: str | Path | None = None,
    backend: str = "local",
    address: str | None = None,
    mlflow: str | None = None,
    reference: bool = True,
) -> Comparison:
    """Train every model in `models` (default: all registered) with seeds 0..seeds-1 on `data` and
    aggregate test accuracy over seeds. Runs are stored under one comparison folder in `store` and
    indexed in its SQLite file. `model_args` maps a model name to hyperparameter overrides;
    `data_options` are the data loader's keywords (see `load_dataset`). `params`, when given, sizes
    every model to about that many trainable parameters (within 5%) by solving for its width.
    `tune` (a number of Optuna trials per model) and/or `budget` (seconds of search in all, shared
    equally among the models) first search each model's learning rate, width, depth and norm (those
    `params` and `model_args` leave free; runs/tune.py) on the validation split, with pruning, before the
    seeded runs, which then train with what each search chose.
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

    `reference` (default on) also fits the data's non-neural reference (reference.py: MiniRocket for
    series, logistic regression for images, the trivial predictor for text) on the same data and scores
    it on the same test split; it is shown beside the networks, never ranked among them.
    """
    refuse_while_a_worker_starts()
    config = (config or TrainConfig()).validate()
    run_elsewhere = _check_backend(backend, address)  # before anything is stored
    start_tracking = _tracker_factory(mlflow)
    resolve_device(config.device)  # refuse a device that is not there before anything is stored
    models_chosen = models is not None  # a default list skips the models that cannot read the data, with a note
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
    models, skip_notes = models_for_data(models, dataset.meta, models_chosen)  # tables: the MLP only
    model_args = {m: a for m, a in model_args.items() if m in models}
    unused = unused_fitted_loss_note(config, dataset)
    for note in [*dataset.meta.notes, *skip_notes, *([unused] if unused else [])]:
        (progress or (lambda event: None))({"event": "note", "text": note})
    check_batch_size(config, dataset)
    protocol = protocol_note(config, dataset)  # "auto" on a small training set: no validation split (train/protocol.py)
    if config.augment:
        from ..train.augment import check_augmentable

        check_augmentable(dataset.meta)  # before anything is stored
    if order:
        from ..data.order import permuted_dataset

        permuted_dataset(dataset, ORDER_SEED)  # refuses data whose positions cannot be shuffled, before anything is stored
    if config.labels is not None:
        from ..train.semi import check_semi

        check_semi(dataset, config)  # before anything is stored
    if params is not None:
        for m in models:
            width = get_model_info(m).width
            if width in model_args.get(m, {}):
                raise UserError(f"'{m}' is given both a parameter budget and its {width}; give one of the two")
            model_args[m] = match_parameters(m, dataset.meta, params, **model_args.get(m, {}))
    tuning = {}
    if tune is not None or budget is not None:
        if tune is not None and (isinstance(tune, bool) or not isinstance(tune, int) or tune < 1):
            raise UserError(f"tune must be a positive whole number of trials, got {tune!r}")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0 or budget == float("inf")):
            raise UserError(f"budget must be a positive number of seconds, got {budget!r}")
        if config.lr is not None:
            raise UserError("tuning chooses each model's learning rate: leave out `lr`, or leave out `tune` and `budget`")
        if stored is not None:
            tuning = resuming.stored_tuning(folder, stored, tune, budget)  # searched when it started: not again
        else:
            tuning = _tune_all(data, models, tune, budget, config, model_args, data_options, params, workers, progress or (lambda e: None))
        for m, chosen in tuning.items():
            names = get_model_info(m).hyperparameters()
            model_args[m] = {**model_args.get(m, {}), **{k: v for k, v in chosen.items() if k in names}}
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
        "tuning": tuning,  # per model: the chosen values, their validation loss, the number of trials (and pruned ones)
        "search": {"trials": tune, "budget": budget} if tuning else None,  # what bought the tuning: trials per model, seconds in all
        "workers": n_workers,
        "threads_per_worker": threads,
        "protocol": protocol,  # None, or the sentence saying the runs train without a validation split, and why
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
        if protocol and progress:
            progress({"event": "note", "text": protocol})
        fit_ref = (lambda: _fit_reference(dataset, progress)) if reference else None
        together = lambda: _seed_ensembles(dataset, folder, models, list(range(seeds)), progress)  # noqa: E731
        planned = {m: planned_epochs(config_for_model(config, m), dataset) for m in models}  # for the ETA: the default budget grows on small data
        return _run_grid(st, folder, spec, jobs, threads, n_workers, tuning, train_fields, model_args, data_options, param_counts, learning_rates, progress, order, report, run_elsewhere, tracker, fit_ref, together, planned)


def _fit_reference(dataset, progress) -> dict | None:
    """The non-neural reference row, fitted in this process once the networks are done (so its clock
    is not shared with them); a failure is a note, never the end of the comparison."""
    from ..reference import fit_reference, reference_name

    emit = progress or (lambda event: None)
    if reference_name(dataset.meta) is None:
        return None
    emit({"event": "reference", "name": reference_name(dataset.meta)})
    try:
        return fit_reference(dataset)
    except Exception as e:  # noqa: BLE001 - the networks are what the comparison is for
        emit({"event": "note", "text": f"the non-neural reference failed ({type(e).__name__}: {e}); the networks are compared without it"})
        return None


def _seed_ensembles(dataset, folder, models, seeds, progress) -> dict:
    """Each model's seeds predicting together (runs/ensemble.py), once the runs are done; a failure is
    a note, never the end of the comparison."""
    from .ensemble import seed_ensembles

    try:
        return seed_ensembles(dataset, folder, models, seeds)
    except Exception as e:  # noqa: BLE001 - the runs and their table are what the comparison is for
        (progress or (lambda event: None))({"event": "note", "text": f"the seeds' ensembles could not be scored ({type(e).__name__}: {e}); the table is complete without them"})
        return {}


def _run_grid(st, folder, spec, jobs, threads, n_workers, tuning, train_fields, model_args, data_options, param_counts, learning_rates, progress, order=False, report=False, run_elsewhere=None, tracker=None, fit_reference=None, fit_ensembles=None, planned=None) -> Comparison:
    """Fit the reference (`fit_reference`, when given), train the runs of `jobs` that have not finished
    in `folder`, score each model's seeds together (`fit_ensembles`), aggregate, write the summary."""
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
    emit({"event": "plan", "runs": len(specs), "skipped": len(specs) - len(to_run), "workers": n_workers if run_elsewhere is None else "Ray", "threads": threads, "folder": str(folder), "max_epochs": spec["train"]["max_epochs"], "planned_epochs": planned or {}})

    start = time.perf_counter()
    status = "interrupted"
    # set by the first Ctrl-C; seen by every worker process (a multiprocessing Event), or only by this one
    stop = mp.get_context("spawn").Event() if n_workers > 1 else threading.Event()
    reference, ensembles = None, {}
    try:
        with first_interrupt_stops(stop, emit):
            if not to_run:
                pass
            elif run_elsewhere is not None:
                run_elsewhere(to_run, emit, record)
            elif n_workers == 1:
                run_here(to_run, emit, record, stop)
            else:
                run_pool(longest_first(to_run, param_counts), n_workers, emit, record, stop)
            if fit_reference is not None and not stop.is_set():
                reference = fit_reference()  # after the networks: its clock shares no core with them
            if fit_ensembles is not None and not stop.is_set():
                ensembles = fit_ensembles()
        if not stop.is_set():
            status = "done"
    except KeyboardInterrupt:  # the second Ctrl-C: the workers were ended at once
        pass
    finally:
        rows = aggregate(runs, models, learning_rates)
        tied = best_models(rows)
        best = tied[0] if tied else None
        meta = spec["dataset_meta"]
        sep = separation(rows, test_examples=spec["sizes"]["test"] if meta.get("task") == "classify" else None)  # one label per input: the test set's size bounds what it can tell
        order_rows = aggregate(permuted_runs, models, learning_rates) if order else None
        result = Comparison(
            dataset=data, rows=rows, runs=runs, folder=folder, best=best, tied=tied, reference=reference, wall_seconds=time.perf_counter() - start, config=spec, separation=sep, order=order_rows, ensembles=ensembles
        )
        summary = {"rows": rows, "best": best, "tied": tied, "reference": reference, "ensembles": ensembles, "separation": sep, "wall_seconds": result.wall_seconds, "status": status}
        if order_rows is not None:
            summary["order"] = order_rows
        st.finish_comparison(folder, summary, status)
        if tracker is not None:
            tracker.finish(result, status)
    if status == "interrupted":
        finished = sum(r.get("status") in ("done", "diverged", "failed") for r in runs + permuted_runs)
        raise ComparisonInterrupted(folder, finished, len(specs))
    if report and tied:
        from ..report import build_report

        emit({"event": "report", "folder": str(folder)})
        try:
            result.report = build_report(folder)
        except Exception as e:  # noqa: BLE001 - the runs are stored; a failed report must not hide them
            emit({"event": "report_failed", "error": f"{type(e).__name__}: {e}", "folder": str(folder)})
    return result


def tidy_comparison(folder: Path, specs: list[RunSpec]) -> None:
    """Remove what a killed process leaves behind (temporary files of cut-short writes, unreferenced
    checkpoint tensors); safe because this process holds the comparison's lock."""
    from ..train.checkpoint import stray_files

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
    from ..limits import check_fits

    for m, count in param_counts.items():
        check_fits(6 * 4 * count, f"training {m} ({count:,} parameters)", "choose a smaller `width`, `layers` or `params`")


BACKENDS = ("local", "ray")  # where runs execute: worker processes here, or a Ray cluster (runs/ray.py)


def _check_backend(backend: str, address: str | None):
    """None for the local backend, else the function that runs the specs there; refuses a backend that
    is unknown or not installed before anything is stored."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend '{backend}'; valid choices: {', '.join(BACKENDS)}")
    if backend == "local":
        if address is not None:
            raise UserError("an address is for `backend='ray'`; add `backend='ray'` or leave `address` out")
        return None
    from .ray import import_ray, run_on_ray

    import_ray()
    return lambda specs, emit, record: run_on_ray(specs, emit, record, address, gpu=any(str(sp.train.get("device", "cpu")).startswith("cuda") for sp in specs))


def _tracker_factory(uri: str | None):
    """None without a tracking URI; else a function (folder, spec) -> tracker; MLflow is checked now."""
    if uri is None:
        return None
    from .tracking import MlflowTracker

    return MlflowTracker.connect(uri)  # an unreachable server fails here, before anything is stored


def _tune_all(data, models, trials, budget, config, model_args, data_options, params, workers, emit) -> dict:
    """Search every model with the same number of trials and/or the same share of the time budget
    (budget x workers / models seconds each, none past the budget's end), models in parallel worker processes."""
    import time

    from .tune import search_space, tune_model

    train = {k: v for k, v in config.to_dict().items() if k not in ("seed", "lr")}
    n_workers, threads = plan_workers(len(models), workers)
    share = budget * n_workers / len(models) if budget is not None else None
    deadline = time.time() + budget if budget is not None else None
    jobs = {m: (data, m, trials, train, model_args.get(m, {}), data_options, params is not None, threads, share, deadline) for m in models}
    spaces = {m: ["lr", *search_space(m, model_args.get(m, {}), params is not None)] for m in models}
    emit({"event": "tune", "models": models, "trials": trials, "budget": budget, "share": share, "spaces": spaces, "workers": n_workers})
    tuning = {}
    if n_workers == 1:
        import torch

        caller_threads = torch.get_num_threads()
        try:
            for m, job in jobs.items():
                tuning[m] = tune_model(*job)  # the same threads as in a worker: the same numbers
                emit({"event": "tuned", "model": m, **tuning[m]})
        finally:
            torch.set_num_threads(caller_threads)
        return tuning
    ctx = mp.get_context("spawn")
    with sigint_ignored():
        pool = ProcessPoolExecutor(n_workers, mp_context=ctx)
        futures = {pool.submit(tune_model, *job): m for m, job in jobs.items()}
    try:
        for fut in as_completed(futures):
            m = futures[fut]
            tuning[m] = fut.result()
            emit({"event": "tuned", "model": m, **tuning[m]})
    except BaseException:
        stop_now(pool)
        raise
    pool.shutdown()
    return {m: tuning[m] for m in models}

"""`compare`, `sanity`, `ablate` and `scaling`: the commands that train or time models, with their
progress display and tables."""

from __future__ import annotations

import argparse
import math
import time

from ..errors import UserError
from ..reference import reference_line
from .options import (
    _add_csv_options,
    _add_shared_model_options,
    _console,
    _parameter_count,
    _positive_float,
    _positive_int,
    add_train_options,
    compact_number,
    data_options_from,
    for_command_line,
    shared_model_args,
    torch_threads,
    train_config_from,
)


def _duration(text: str) -> float:
    """A time budget in seconds: 600, 90s, 10m, 1.5h."""
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:].lower())
    try:
        v = float(text[:-1] if scale else text) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration; write it as 600, 90s, 10m or 1.5h") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive duration, such as 10m")
    return v


# the TrainConfig fields 'compare' takes as options (all but seed: it takes --seeds)
COMPARE_OPTIONS = ("max_epochs", "max_seconds", "patience", "lr", "schedule", "clip", "weight_decay", "augment", "labels", "semi", "refit", "validation", "fitted_loss", "batch_size", "device")


def add_commands(sub, d) -> None:
    """Add this group's subcommand parsers to `sub`; `d` is a TrainConfig() for the defaults."""
    c = sub.add_parser("compare", help="train models on one data set under the same rules and compare them")
    c.add_argument("data", metavar="DATA", help="a data set name or family (mnist1d, ucr:GunPoint, adding:200; see 'nncompare datasets'), or the path of your own CSV / NPZ file, UCR/UEA archive file (.ts, .arff; NAME_TRAIN beside NAME_TEST keeps the published split) or image folder")
    c.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels, by name or 0-based index (default: the first)")
    c.add_argument("--no-normalize", action="store_true", help="for UCR/UEA and CSV/NPZ series: keep the raw values instead of z-normalising each series")
    _add_csv_options(c)
    c.add_argument("--models", default=None, help="comma-separated model names (default: all; see 'nncompare models')")
    c.add_argument("--params", type=_parameter_count, default=None, help="size every model to about this many parameters (within 5%%), e.g. 5k or 20000 (default: each model's own size)")
    _add_shared_model_options(c)
    c.add_argument("--tune", type=_positive_int, default=None, metavar="K", help="first search each model's learning rate, width, depth and norm (those no other option fixes; the learning rate alone with --params) with K Optuna trials, scored on a validation split, then train the seeds with what it chose")
    c.add_argument("--budget", type=_duration, default=None, metavar="TIME", help="like --tune, but for a wall-clock time shared equally among the models, such as 90s, 10m or 1h (with --tune: whichever ends first); trials that lag are pruned (successive halving)")
    c.add_argument("--seeds", type=_positive_int, default=3, help="runs per model, seeds 0..N-1 (default: 3)")
    add_train_options(c, COMPARE_OPTIONS)
    c.add_argument("--workers", type=_positive_int, default=None, help="parallel worker processes (default: one per core, at most one per run)")
    c.add_argument("--store", default=None, help="folder for runs and the index (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    c.add_argument("--sanity", action="store_true", help="first run the overfit check ('nncompare sanity') on every model and stop if one fails")
    c.add_argument("--order", action="store_true", help="order sensitivity: also train every model on the same data with its input positions shuffled by one fixed permutation (doubles the runs)")
    c.add_argument("--no-report", action="store_true", help="skip report.html / report.md (they can be written later with 'nncompare report')")
    c.add_argument("--no-reference", action="store_true", help="skip the non-neural reference row (MiniRocket for series, logistic regression for images, the trivial predictor for text), fitted on the same data and scored on the same test split")
    c.add_argument("--resume", metavar="DIR", default=None, help="go on with the comparison in DIR (or its id in the store), started by this same command: finished runs are kept, the others go on from their last epoch")
    c.add_argument("--quiet", action="store_true", help="no progress display")
    c.add_argument("--backend", choices=["local", "ray"], default="local", help="local: worker processes on this machine; ray: each run a Ray task on a cluster (pip install 'nncompare[ray]')")
    c.add_argument("--address", default=None, help="with --backend ray: the cluster (auto, HOST:6379 or ray://HOST:10001; default: RAY_ADDRESS, a 'ray start' cluster on this machine, or a new local one)")
    c.add_argument("--mlflow", default=None, metavar="URI", help="also log every run to MLflow: a tracking URI or a folder (pip install 'nncompare[mlflow]')")

    from ..train.sanity import DEFAULT_EXAMPLES, DEFAULT_STEPS

    s = sub.add_parser("sanity", help="the overfit check: with every extra off, can each model fit one small fixed batch?")
    s.add_argument("data", metavar="DATA", help="a data set name or path, as for 'compare'")
    s.add_argument("--model", "--models", dest="models", default=None, help="one model or a comma-separated list (default: all)")
    s.add_argument("--examples", type=_positive_int, default=DEFAULT_EXAMPLES, help=f"size of the fixed batch: the first N training examples (default: {DEFAULT_EXAMPLES})")
    s.add_argument("--steps", type=_positive_int, default=DEFAULT_STEPS, help=f"step budget per model (default: {DEFAULT_STEPS})")
    add_train_options(s, ["lr"])
    s.add_argument("--seed", type=int, default=0, help="initial weights (default: 0)")
    s.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels")
    s.add_argument("--no-normalize", action="store_true", help="keep raw series values instead of z-normalising each series")
    _add_csv_options(s)
    add_train_options(s, ["device"])

    from ..runs.ablate import BELLS

    a = sub.add_parser("ablate", help="what each bell or whistle adds: the plain model, each bell alone and all together, over seeds")
    a.add_argument("data", metavar="DATA", help="a data set name or path, as for 'compare'")
    a.add_argument("--model", required=True, help="the model to ablate (see 'nncompare models')")
    a.add_argument("--bells", required=True, help=f"comma-separated, from: {', '.join(BELLS)}")
    a.add_argument("--seeds", type=_positive_int, default=3, help="runs per variant, seeds 0..N-1 (default: 3)")
    add_train_options(a, ["max_epochs", "lr"])
    a.add_argument("--workers", type=_positive_int, default=None, help="parallel worker processes (default: one per core)")
    a.add_argument("--store", default=None, help="folder for runs and the index (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    a.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels")
    a.add_argument("--no-normalize", action="store_true", help="keep raw series values instead of z-normalising each series")
    _add_csv_options(a)
    a.add_argument("--quiet", action="store_true", help="no progress display")

    sc = sub.add_parser("scaling", help="how training and inference time per example grow with sequence length, per architecture, at a matched parameter count")
    sc.add_argument("--models", default=None, help="comma-separated model names (default: all)")
    sc.add_argument("--lengths", default="32,128,512,2048", help="comma-separated sequence lengths (default: 32,128,512,2048)")
    sc.add_argument("--params", type=_parameter_count, default=20000, help="parameters of every model at every length (default: 20k)")
    sc.add_argument("--seconds", type=_positive_float, default=0.5, help="least time spent timing each point (default: 0.5)")
    sc.add_argument("--plot", default="scaling.png", help="where to write the plot (default: scaling.png; '' for none)")
    c.set_defaults(handler=cmd_compare)
    s.set_defaults(handler=cmd_sanity)
    a.set_defaults(handler=cmd_ablate)
    sc.set_defaults(handler=cmd_scaling)



class GridProgress:
    """One progress display for the whole grid: runs done, the epoch of each run in flight, ETA.

    On a terminal it is a live bar; elsewhere (CI, a pipe) one line per finished run.
    """

    def __init__(self, console, quiet: bool = False):
        self.console, self.quiet = console, quiet
        self.progress = None
        self.in_flight: dict[tuple, int] = {}
        self.done = 0
        self.total = 0
        self.max_epochs = 1
        self.planned: dict[str, int] = {}
        self.start = time.perf_counter()

    def __call__(self, e: dict) -> None:
        kind = e["event"]
        if kind == "plan":  # a new grid (ablate runs several one after another): start over
            self.close()
            self.done, self.in_flight = e.get("skipped", 0), {}
            self.total, self.max_epochs = e["runs"], e["max_epochs"] or 40  # None: the default budget, about 40
            self.planned = e.get("planned_epochs") or {}  # per model: the default budget grows on small data (1000 epochs on a UCR set)
            if not self.quiet:
                kept = f" ({e['skipped']} finished before, kept)" if e.get("skipped") else ""
                self.console.print(
                    f"{e['runs']} run{'' if e['runs'] == 1 else 's'}{kept} on {e['workers']} worker(s) x {e['threads']} thread(s); storing in {e['folder']}", highlight=False
                )
            if not self.quiet and self.console.is_terminal:
                from rich.progress import (
                    BarColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )

                self.progress = Progress(
                    TextColumn("[bold]{task.fields[runs]}"),
                    BarColumn(),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    TextColumn("{task.description}", markup=False),
                    console=self.console,
                    transient=True,
                )
                self.task = self.progress.add_task("", total=self.total, runs=f"0/{self.total} runs")
                self.progress.start()
            return
        if kind == "note":
            self.console.print(f"note: {for_command_line(e['text'])}", highlight=False)
            return
        if kind == "stopping":
            self.console.print("stopping: each run ends after its current step, keeping its last epoch-end checkpoint (Ctrl-C again stops at once)", highlight=False)
            return
        if kind == "reference":
            if not self.quiet:
                self.console.print(f"fitting the non-neural reference ({e['name']}) on the same data", highlight=False)
            return
        if kind == "tune":
            if not self.quiet:
                limit = " or ".join([f"{e['trials']} trials"] * bool(e.get("trials")) + [f"{e['share']:.0f} s of one worker"] * bool(e.get("share")))
                searched = "; ".join(f"{m}: {', '.join(space)}" for m, space in e.get("spaces", {}).items())
                self.console.print(f"searching each model's settings on a validation split, {limit} each, {e['workers']} worker(s) ({searched})", highlight=False)
            return
        if kind == "report":
            self.close()
            if not self.quiet:
                self.console.print("writing the report: analysing each model's first seed", highlight=False)
            return
        if kind == "report_failed":
            self.console.print(f"the report could not be written ({e['error']}); the runs are stored, try 'nncompare report {e['folder']}'", highlight=False)
            return
        if kind == "tuned":
            if not self.quiet:
                chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in e.items() if k not in ("event", "model", "val_loss", "trials", "pruned", "seconds"))
                self.console.print(f"  {e['model']}: {chosen} (validation loss {e['val_loss']:.4g}; {e['trials']} trials, {e.get('pruned', 0)} pruned)", highlight=False)
            return
        key = (e.get("model"), e.get("seed"))
        if kind == "start":
            self.in_flight[key] = 0
        elif kind == "epoch" and key in self.in_flight:
            self.in_flight[key] = e["epoch"]
        elif kind == "done":
            self.in_flight.pop(key, None)
            self.done += 1
            if not self.quiet and self.progress is None:
                status = e.get("status", "done")
                if status in ("failed", "diverged"):
                    what = e.get("error", "")
                elif status == "interrupted":
                    what = "stopped; resumable"
                elif e["score_name"] == "test accuracy":
                    what = f"{100 * e['score']:.1f}% test accuracy in {e['train_seconds']:.1f} s"
                else:
                    what = f"{e['score_name']} {e['score']:.4g} in {e['train_seconds']:.1f} s"
                if e.get("stop_reason") == "fitted":  # train/epochs.py NoValidation.done
                    what += f", stopped after epoch {e.get('epochs')}: its training data fitted"
                self.console.print(f"[{self.done}/{self.total}] {e['model']} seed {e['seed']}: {status}, {what}", highlight=False)
        if self.progress is not None:
            flying = "  ".join(f"{m} s{s} ep {ep}" for (m, s), ep in sorted(self.in_flight.items(), key=str))
            self.progress.update(self.task, completed=self.completed(), description=flying, runs=f"{self.done}/{self.total} runs")

    def completed(self) -> float:
        """Runs done, with each run in flight counted by its share of its model's epoch budget, so the
        ETA moves smoothly (at most 0.95 of a run: an early stop may end it any time)."""
        return self.done + sum(min(ep / self.planned.get(model, self.max_epochs), 0.95) for (model, _), ep in self.in_flight.items())

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


FAMILY_SHORT = {"feed-forward": "FF", "convolutional": "CNN", "recurrent": "RNN"}  # the talk's three columns


def comparison_table(result, seeds: int):
    """The comparison as a rich table that fits an 80-column terminal; the best row marked."""
    from rich import box
    from rich.table import Table

    from ..results import format_ci, format_reference_score, format_score, score_heading

    tied = result.tied or ([result.best] if result.best else [])
    over = "one seed" if seeds == 1 else f"over {seeds} seeds, mean ± std"
    mark = "★ tied best" if len(tied) > 1 else "★ best"
    t = Table(title=f"{result.dataset}: {result.rows[0]['score_name'] if result.rows else 'score'}, {over}; {mark}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    heading = score_heading(result.rows[0]["score_name"]) if result.rows else "score"
    contexts = any(r.get("context") is not None for r in result.rows)  # text: characters each prediction sees
    for col, just in (("model", "left"), ("family", "left"), ("params", "right"), ("lr", "right"), *([("context", "right")] if contexts else []), (heading, "right"), ("95% CI", "right"), ("train s", "right"), ("epochs", "right"), ("infer/s", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for r in result.rows:
        best = r["model"] in tied
        ok = r["n_done"] > 0
        t.add_row(
            f"{r['model']} ★" if best else r["model"],
            FAMILY_SHORT.get(r["family"], r["family"]),
            f"{r['params']:,}",
            f"{r['lr']:.3g}",
            *([str(r.get("context") if r.get("context") is not None else "-")] if contexts else []),
            format_score(r),
            format_ci(r),
            f"{r['train_seconds']:.1f}" if ok else "-",
            f"{r['epochs']:.0f}" if ok else "-",
            compact_number(r["inference_per_second"]) if ok else "-",
            style="bold green" if best else None,
        )
    ref = result.reference
    if ref:
        for r in [ref, *ref.get("also", [])]:  # tables: gradient boosting, then the linear model
            t.add_row(
                f"{r['model']} †", "ref", "-", "-", *(["-"] if contexts else []), format_reference_score(r), "-",
                f"{r['train_seconds']:.1f}", "-", compact_number(r["inference_per_second"]) if r["inference_per_second"] == r["inference_per_second"] else "-", style="dim",
            )
        described = "; ".join(f"{r['model']}: {r['description']}" for r in [ref, *ref.get("also", [])]) if ref.get("also") else ref["description"]
        t.caption = f"† non-neural reference: {described}; not ranked among the networks"
        t.caption_justify = "left"
    return t


def baseline_line(baseline: dict) -> str:
    """The trivial predictor's score, to read the models' scores against."""
    text = f"trivial baseline ({baseline['name']}): {baseline['score_name']} {baseline['expected']:.4g}"
    if "measured" in baseline:
        text += f" in expectation, {baseline['measured']:.4g} on this test split"
    return text


def semi_table(supervised, semi, method: str, labels: int):
    """Supervised-only against semi-supervised, per model: mean ± std and the gain."""
    from rich import box
    from rich.table import Table

    from ..results import format_score

    t = Table(title=f"{semi.dataset} with {labels} labels: supervised only vs {method}", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("model", "supervised only", method, "gain"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for a, b in zip(supervised.rows, semi.rows):
        gain = b["score_mean"] - a["score_mean"]
        gain_text = f"{100 * gain:+.1f} points" if a["score_name"] == "test accuracy" else f"{gain:+.4g}"
        t.add_row(a["model"], format_score(a), format_score(b), gain_text)
    return t


def run_sanity(console, data, models, **options):
    """Run the overfit check, one line per model as it finishes, then the table; returns the results."""
    from ..train.sanity import sanity

    console.print(f"overfit check on {data}: each model, every extra off, one fixed batch", highlight=False)
    results = sanity(data, models=models, on_note=lambda text: console.print(f"note: {for_command_line(text)}", highlight=False), on_result=lambda r: console.print(f"  {r.model}: {r.verdict} after {r.steps} steps ({r.seconds:.1f} s)", highlight=False), **options)
    console.print(sanity_table(results))
    return results


def sanity_table(results):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(box=box.SIMPLE_HEAD, title="overfit check", title_justify="left")
    for col, justify in (("model", "left"), ("steps", "right"), ("loss start", "right"), ("loss end", "right"), ("train acc", "right"), ("verdict", "left"), ("hint", "left")):
        t.add_column(col, justify=justify, overflow="fold")
    for r in results:
        acc = "-" if r.train_acc is None else f"{100 * r.train_acc:.1f}%"
        if r.target_acc is not None and r.target_acc < 1:
            acc += f" (of {100 * r.target_acc:.1f}% possible)"
        verdict = Text("pass", style="green") if r.passed else Text("fail", style="red")
        t.add_row(r.model, str(r.steps), f"{r.initial_loss:.3g}", f"{r.final_loss:.3g}", acc, verdict, for_command_line(r.hint))
    return t


def cmd_ablate(args) -> int:
    from rich import box
    from rich.table import Table

    from ..runs.ablate import ablate, format_gain, format_value, parse_bells

    parse_bells(args.model, args.bells)  # a bad name fails before anything trains
    console = _console()
    progress = GridProgress(console, quiet=args.quiet)
    try:
        result = ablate(args.data, args.model, args.bells, seeds=args.seeds, config=train_config_from(args), store=args.store, workers=args.workers, progress=progress, data_options=data_options_from(args))
    finally:
        progress.close()
    change = "gain vs plain" if result.higher_is_better else "change vs plain"
    t = Table(title=f"{args.model} on {args.data}: {result.score_name} over {args.seeds} seed(s)", title_justify="left", box=box.SIMPLE_HEAD)
    for col, just in (("variant", "left"), ("score (mean ± std)", "right"), (f"{change} (mean ± std)", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for r in result.rows:
        t.add_row(r["variant"], format_value(r["mean"], r["std"], result.score_name), format_gain(r, result.score_name))
    console.print(t)
    console.print("plain: every extra off (no dropout, no normalisation); gains are per-seed differences from plain", highlight=False)
    return 0


def cmd_sanity(args) -> int:
    options = {"examples": args.examples, "steps": args.steps, "lr": args.lr, "seed": args.seed, "device": args.device}
    results = run_sanity(_console(), args.data, args.models, data_options=data_options_from(args), **options)
    return 0 if all(r.passed for r in results) else 1


def order_line(rows: list[dict], order_rows: list[dict]) -> str:
    """One line: each model's score in order -> with its input positions shuffled."""
    shuffled = {r["model"]: r for r in order_rows}
    acc = rows[0]["score_name"] == "test accuracy"
    parts = []
    for r in rows:
        p = shuffled.get(r["model"])
        if not r["n_done"] or not p or not p["n_done"]:
            parts.append(f"{r['model']} -")
        elif acc:
            parts.append(f"{r['model']} {100 * r['score_mean']:.1f} → {100 * p['score_mean']:.1f}")
        else:
            parts.append(f"{r['model']} {r['score_mean']:.4g} → {p['score_mean']:.4g}")
    return "order sensitivity (input positions shuffled): " + ", ".join(parts)


def cmd_scaling(args) -> int:
    from rich.table import Table

    from ..runs.scaling import (
        check_lengths,
        measure_scaling,
        scaling_plot,
        scaling_table,
    )
    from ..utils import atomic_write_bytes

    lengths = check_lengths(args.lengths)
    console = _console()
    console.print(f"timing each model at lengths {', '.join(map(str, lengths))} with about {args.params:,} parameters, batches of 32, {torch_threads()} thread(s)", highlight=False)
    points = measure_scaling(args.models, lengths, params=args.params, min_seconds=args.seconds, progress=lambda t: console.print(t, highlight=False))
    lengths, rows = scaling_table(points)
    table = Table(title="µs per example: training step / inference; time ∝ length^k", title_justify="left", box=None)
    table.add_column("model")
    for n in lengths:
        table.add_column(f"L={n}", justify="right")
    table.add_column("k train", justify="right")
    table.add_column("k infer", justify="right")
    for r in rows:
        table.add_row(r["model"], *[f"{t:,.0f} / {i:,.0f}" for t, i in zip(r["train_us"], r["infer_us"])], f"{r['train_exponent']:.2f}", f"{r['infer_exponent']:.2f}")
    console.print(table)
    if args.plot:
        atomic_write_bytes(args.plot, scaling_plot(points))
        console.print(f"plot: {args.plot}", highlight=False)
    return 0


def cmd_compare(args) -> int:
    from ..models import parse_models
    from ..results import ensemble_line, separation_line, underfit_line
    from ..runs.grid import compare

    config = train_config_from(args)
    if args.resume is not None and args.semi != "none":
        raise UserError("--resume cannot be combined with --semi, which runs two comparisons; resume each with its own command: the semi-supervised one, then --semi none")
    console = _console()
    models = parse_models(args.models)
    model_args = shared_model_args(args, models, console)
    chosen = models if args.models else None  # the default list: models that cannot read the data are skipped with a note
    if args.sanity:
        from ..train.sanity import EXTRAS_OFF

        plain = {m: {k: v for k, v in a.items() if k not in EXTRAS_OFF} for m, a in model_args.items()}  # extras stay off
        results = run_sanity(console, args.data, chosen, data_options=data_options_from(args), lr=args.lr, device=args.device, model_args=plain)
        failed = [r.model for r in results if not r.passed]
        if failed:
            console.print(f"overfit check failed for {', '.join(failed)}; nothing compared. Fix what the hints say, or compare without --sanity.", highlight=False)
            return 1
    progress = GridProgress(console, quiet=args.quiet)
    try:
        result = compare(
            args.data,
            models=chosen,
            seeds=args.seeds,
            config=config,
            model_args=model_args,
            store=args.store,
            workers=args.workers,
            progress=progress,
            data_options=data_options_from(args),
            params=args.params,
            tune=args.tune,
            budget=args.budget,
            order=args.order,
            report=not args.no_report,
            resume=args.resume,
            backend=args.backend,
            address=args.address,
            mlflow=args.mlflow,
            reference=not args.no_reference,
        )
    finally:
        progress.close()

    console.print(comparison_table(result, args.seeds))
    if result.separation:
        console.print(separation_line(result.separation, result.rows[0]["score_name"]), highlight=False)
    baseline = result.config.get("dataset_meta", {}).get("baseline")
    if baseline:
        console.print(baseline_line(baseline), highlight=False)
    if result.reference and result.reference["model"] != "trivial":  # the trivial one is the baseline line above
        best = next((r for r in result.rows if r["model"] == result.best), None)
        console.print(reference_line(result.reference, best), highlight=False)
    if result.ensembles:
        console.print(ensemble_line(result.ensembles), highlight=False)
    if fitting := underfit_line(result.rows):
        console.print(fitting, highlight=False)
    if result.order:
        console.print(order_line(result.rows, result.order), highlight=False)
    n_runs = len(result.runs) + len(result.order or []) * args.seeds
    console.print(f"{n_runs} run{'' if n_runs == 1 else 's'} in {result.wall_seconds:.1f} s; stored in {result.folder}", highlight=False)
    if result.report:
        console.print(f"report: {result.report[0]}  (tables only: {result.report[1].name})", highlight=False)
    if args.semi != "none":
        from dataclasses import replace

        console.print(f"now the same runs with the {args.labels} labelled examples only, for the supervised-only column", highlight=False)
        progress = GridProgress(console, quiet=args.quiet)
        try:
            supervised = compare(args.data, models=chosen, seeds=args.seeds, config=replace(config, semi="none"), model_args=model_args, store=args.store, workers=args.workers, progress=progress, data_options=data_options_from(args), params=args.params, reference=False)
        finally:
            progress.close()
        console.print(semi_table(supervised, result, args.semi, args.labels))
    from ..train.epochs import STALL_EPOCHS

    for r in result.runs:
        if r.get("status") == "failed":
            console.print(f"run {r['model']} seed {r['seed']} failed: {r.get('error')}", highlight=False)
        elif r.get("status") == "diverged":
            console.print(f"run {r['model']} seed {r['seed']} {r.get('error', 'diverged')}", highlight=False)
        if r.get("skipped_steps"):
            stalled = f", and stopped after epoch {r.get('epochs')}: every step of its last {STALL_EPOCHS} epochs was skipped (its best weights are kept)" if r.get("stop_reason") == "stalled" else ""
            console.print(f"run {r['model']} seed {r['seed']} skipped {r['skipped_steps']} training step(s) whose gradient was not finite{stalled} (history.csv shows the epochs; see docs/reliability.md)", highlight=False)
    return 0

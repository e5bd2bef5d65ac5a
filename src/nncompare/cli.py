"""The `nncompare` command: parses, calls the library, prints. Nothing else lives here."""

from __future__ import annotations

import argparse
import math
import sys
import time

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is a one-line UserError (exit 2) instead of usage + message."""

    def error(self, message):
        raise UserError(f"{message} (see '{self.prog} --help')")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive number")
    return v


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"'{text}' must be 0 or a positive number")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return v


def _parameter_count(text: str) -> int:
    """A parameter budget: 5000, 5k, 20K, 1.5M."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    number = text[:-1] if scale > 1 else text
    try:
        v = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a parameter count; write it as 5000, 5k or 1.5M") from None
    if not (math.isfinite(v) and v >= 1 and v == int(v)):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive whole number of parameters, such as 5k")
    return int(v)


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (0 <= v < 1):
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 0 and below 1, such as 0.2")
    return v


def _add_shared_model_options(p) -> None:
    """Options every architecture understands, each translated to the model's own hyperparameter."""
    from .models.layers import ACTIVATIONS

    p.add_argument("--width", type=_positive_int, default=None, help="hidden units (MLP, RNNs) or channels (CNN, TCN) for every model (default: each model's own)")
    p.add_argument("--layers", type=_positive_int, default=None, help="hidden layers (MLP), convolutions (CNN), residual blocks (TCN) or stacked recurrent layers (default: each model's own)")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default=None, help="nonlinearity of the MLP, CNN and TCN (recurrent cells keep their own)")
    p.add_argument("--dropout", type=_probability, default=None, help="dropout probability: the MLP's hidden units (default 0.5 there); a recurrent model's inputs, outputs and the connections between stacked layers, not its recurrent state (default 0)")
    p.add_argument("--norm", choices=["none", "batch", "layer"], default=None, help="batch: batch norm after each MLP layer and each CNN/TCN convolution; layer: layer-normalised RNN/LSTM/GRU cells (Ba et al. 2016); default none")
    p.add_argument("--recurrent-dropout", action="store_true", help="recurrent models also drop h_{t-1} where it enters the recurrence, with the --dropout probability and one mask per sequence (Gal & Ghahramani 2016)")
    p.add_argument("--residual", action="store_true", default=None, help="residual connections between equal-width blocks of the MLP and the CNN (the TCN always has them)")


def shared_model_args(args, models: list[str], console=None) -> dict:
    """Per-model hyperparameter overrides from the shared options; says which option skips which model."""
    from .models import shared_overrides

    if args.recurrent_dropout and not args.dropout:
        raise UserError("--recurrent-dropout uses the --dropout probability; give --dropout P as well, such as --dropout 0.2")
    recurrent_dropout = args.dropout if args.recurrent_dropout else None
    model_args = {}
    for m in models:
        overrides, notes = shared_overrides(m, width=args.width, layers=args.layers, activation=args.activation, dropout=args.dropout, norm=args.norm, residual=args.residual, recurrent_dropout=recurrent_dropout)
        if overrides:
            model_args[m] = overrides
        if console is not None:
            for note in notes:
                console.print(f"note: {note}", highlight=False)
    return model_args


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .train import TrainConfig
    from .train.loop import SCHEDULES

    d = TrainConfig()
    p = _Parser(prog="nncompare", description="Feed-forward, convolutional or recurrent: which network fits this data, and why?")
    p.add_argument("--version", action="version", version=f"nncompare {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("compare", help="train models on one data set under the same rules and compare them")
    c.add_argument("data", metavar="DATA", help="a data set name or family (mnist1d, ucr:GunPoint, adding:200; see 'nncompare datasets'), or the path of your own CSV / NPZ file or image folder")
    c.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels, by name or 0-based index (default: the first)")
    c.add_argument("--no-normalize", action="store_true", help="for UCR/UEA and CSV/NPZ series: keep the raw values instead of z-normalising each series")
    c.add_argument("--models", default=None, help="comma-separated model names (default: all; see 'nncompare models')")
    c.add_argument("--params", type=_parameter_count, default=None, help="size every model to about this many parameters (within 5%%), e.g. 5k or 20000 (default: each model's own size)")
    _add_shared_model_options(c)
    c.add_argument("--tune", type=_positive_int, default=None, metavar="K", help="first spend K Optuna trials per model on its learning rate (and width, unless --params or --width fixes it), chosen on the validation split")
    c.add_argument("--seeds", type=_positive_int, default=3, help="runs per model, seeds 0..N-1 (default: 3)")
    c.add_argument("--epochs", type=_positive_int, default=None, help="most epochs per run (default: 40, more on a small data set so a run has at least 1000 steps)")
    c.add_argument("--max-seconds", type=_positive_float, default=None, help="wall-clock budget per run in seconds (default: none)")
    c.add_argument("--patience", type=_positive_int, default=None, help="early-stopping patience in epochs (default: 10, scaled with the default epochs)")
    c.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate for every model (default: each model's recommended rate, see 'nncompare models')")
    c.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help="learning rate over each run: constant, cosine (down to 0 at the last planned step) or onecycle (default: constant)")
    c.add_argument("--clip", type=_non_negative_float, default=d.clip, help=f"largest gradient norm per step, 0 for no clipping (default: {d.clip:g})")
    c.add_argument("--weight-decay", type=_non_negative_float, default=d.weight_decay, help="L2 penalty inside Adam (default: 0, off)")
    c.add_argument("--augment", action="store_true", help="light augmentation of training batches: series shifted, scaled and noised; images shifted by a few pixels (classification only)")
    c.add_argument("--labels", type=_positive_int, default=None, metavar="N", help="keep N labelled training examples (stratified, the same for every run) and treat the rest as unlabelled")
    c.add_argument("--semi", choices=["none", "pseudo", "meanteacher"], default="none", help="with --labels: use the unlabelled examples by pseudo-labelling or a mean teacher; the table then also shows supervised-only (default: none)")
    c.add_argument("--refit", action="store_true", help="after early stopping picks the epoch count on the validation split, retrain on train+val for that many epochs and test that model (for small data sets; about doubles the time)")
    c.add_argument("--no-validation", action="store_true", help="for small data sets (the protocol of FCN and dl-4-tsc): no validation split; train on train+val for --epochs, halve the learning rate after --patience epochs (default 50) without a lower training loss, keep the weights of the lowest training loss")
    c.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help=f"examples per step (default: {d.batch_size})")
    c.add_argument("--workers", type=_positive_int, default=None, help="parallel worker processes (default: one per core, at most one per run)")
    c.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N (default: cpu)")
    c.add_argument("--store", default=None, help="folder for runs and the index (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    c.add_argument("--sanity", action="store_true", help="first run the overfit check ('nncompare sanity') on every model and stop if one fails")
    c.add_argument("--order", action="store_true", help="order sensitivity: also train every model on the same data with its input positions shuffled by one fixed permutation (doubles the runs)")
    c.add_argument("--no-report", action="store_true", help="skip report.html / report.md (they can be written later with 'nncompare report')")
    c.add_argument("--resume", metavar="DIR", default=None, help="go on with the comparison in DIR (or its id in the store), started by this same command: finished runs are kept, the others go on from their last epoch")
    c.add_argument("--quiet", action="store_true", help="no progress display")
    c.add_argument("--backend", choices=["local", "ray"], default="local", help="local: worker processes on this machine; ray: each run a Ray task on a cluster (pip install 'nncompare[ray]')")
    c.add_argument("--address", default=None, help="with --backend ray: the cluster (auto, HOST:6379 or ray://HOST:10001; default: RAY_ADDRESS, a 'ray start' cluster on this machine, or a new local one)")
    c.add_argument("--mlflow", default=None, metavar="URI", help="also log every run to MLflow: a tracking URI or a folder (pip install 'nncompare[mlflow]')")

    from .train.sanity import DEFAULT_EXAMPLES, DEFAULT_STEPS

    s = sub.add_parser("sanity", help="the overfit check: with every extra off, can each model fit one small fixed batch?")
    s.add_argument("data", metavar="DATA", help="a data set name or path, as for 'compare'")
    s.add_argument("--model", "--models", dest="models", default=None, help="one model or a comma-separated list (default: all)")
    s.add_argument("--examples", type=_positive_int, default=DEFAULT_EXAMPLES, help=f"size of the fixed batch: the first N training examples (default: {DEFAULT_EXAMPLES})")
    s.add_argument("--steps", type=_positive_int, default=DEFAULT_STEPS, help=f"step budget per model (default: {DEFAULT_STEPS})")
    s.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate for every model (default: each model's recommended rate)")
    s.add_argument("--seed", type=int, default=0, help="initial weights (default: 0)")
    s.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels")
    s.add_argument("--no-normalize", action="store_true", help="keep raw series values instead of z-normalising each series")
    s.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N (default: cpu)")

    from .ablate import BELLS

    a = sub.add_parser("ablate", help="what each bell or whistle adds: the plain model, each bell alone and all together, over seeds")
    a.add_argument("data", metavar="DATA", help="a data set name or path, as for 'compare'")
    a.add_argument("--model", required=True, help="the model to ablate (see 'nncompare models')")
    a.add_argument("--bells", required=True, help=f"comma-separated, from: {', '.join(BELLS)}")
    a.add_argument("--seeds", type=_positive_int, default=3, help="runs per variant, seeds 0..N-1 (default: 3)")
    a.add_argument("--epochs", type=_positive_int, default=None, help="most epochs per run (default as for 'compare')")
    a.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate (default: the model's recommended rate)")
    a.add_argument("--workers", type=_positive_int, default=None, help="parallel worker processes (default: one per core)")
    a.add_argument("--store", default=None, help="folder for runs and the index (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    a.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels")
    a.add_argument("--no-normalize", action="store_true", help="keep raw series values instead of z-normalising each series")
    a.add_argument("--quiet", action="store_true", help="no progress display")

    g = sub.add_parser("generate", help="write text with a model trained on text (a stored run of 'compare text' or 'compare text:FILE')")
    g.add_argument("run", metavar="RUN", help="a run folder, e.g. nncompare-runs/<comparison>/lstm-seed0 ('nncompare runs COMPARISON' lists them)")
    g.add_argument("--prompt", default="", help="text to start from, in characters of the training text (default: none, as after a line break)")
    g.add_argument("--chars", type=_positive_int, default=500, help="characters to write after the prompt (default: 500)")
    g.add_argument("--temperature", type=_non_negative_float, default=1.0, help="1 samples the model's distribution, lower is more conservative, 0 always takes the most likely character (default: 1)")
    g.add_argument("--top-k", type=_positive_int, default=None, help="sample among the K most likely characters only (default: all)")
    g.add_argument("--seed", type=int, default=0, help="seed of the sampling draws; the same seed writes the same text (default: 0)")

    sub.add_parser("models", help="list the models")
    sub.add_parser("datasets", help="list the built-in data sets with their shapes")
    sc = sub.add_parser("scaling", help="how training and inference time per example grow with sequence length, per architecture, at a matched parameter count")
    sc.add_argument("--models", default=None, help="comma-separated model names (default: all)")
    sc.add_argument("--lengths", default="32,128,512,2048", help="comma-separated sequence lengths (default: 32,128,512,2048)")
    sc.add_argument("--params", type=_parameter_count, default=20000, help="parameters of every model at every length (default: 20k)")
    sc.add_argument("--seconds", type=_positive_float, default=0.5, help="least time spent timing each point (default: 0.5)")
    sc.add_argument("--plot", default="scaling.png", help="where to write the plot (default: scaling.png; '' for none)")
    rp = sub.add_parser("report", help="write report.html and report.md of a stored comparison again (analyses only; nothing is trained)")
    rp.add_argument("comparison", metavar="DIR", help="the comparison folder, or its id in the store")
    rp.add_argument("--store", default=None, help="the store folder, for an id (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    r = sub.add_parser("runs", help="list stored comparisons, or the runs of one")
    r.add_argument("comparison", nargs="?", help="a comparison id to list its runs")
    r.add_argument("--store", default=None, help="the store folder (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    r.add_argument("--check", action="store_true", help="read every stored file back and report missing, corrupt or inconsistent ones (exit code 1 if any)")

    from .cli_deploy import add_commands

    add_commands(sub, d)  # train (torchrun-aware), export, predict
    return p


def main(argv=None) -> int:
    from .compare import ComparisonInterrupted

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if getattr(args, "handler", None) is not None:  # commands that name their own handler (cli_deploy.py)
            return args.handler(args)
        commands = {"compare": cmd_compare, "sanity": cmd_sanity, "ablate": cmd_ablate, "generate": cmd_generate, "models": cmd_models, "datasets": cmd_datasets, "runs": cmd_runs, "report": cmd_report, "scaling": cmd_scaling}
        return commands[args.command](args)
    except UserError as e:
        print(f"nncompare: error: {e}", file=sys.stderr)
        return 2
    except ComparisonInterrupted as e:
        print(f"nncompare: interrupted after {e.finished} of {e.total} runs; the unfinished ones keep their last epoch-end checkpoint", file=sys.stderr)
        if argv and argv[0] == "compare":
            print(f"resume with: {resume_command(argv, e.folder)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("nncompare: interrupted", file=sys.stderr)
        return 130


def resume_command(argv: list[str], folder) -> str:
    """The command line that resumes: this one, with --resume FOLDER (replacing any --resume given)."""
    import shlex

    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--resume":
            skip = True
        elif not a.startswith("--resume="):
            kept.append(a)
    return shlex.join(["nncompare", *kept, "--resume", str(folder)])


def _console():
    import shutil

    from rich.console import Console

    # a pipe or CI log has no width; rich would assume 80 columns and fold the tables
    return Console(width=None if sys.stdout.isatty() else max(120, shutil.get_terminal_size().columns))


def cmd_generate(args) -> int:
    from .sampling import generate, write_utf8

    text = generate(args.run, prompt=args.prompt, chars=args.chars, temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    write_utf8(args.prompt + text + "\n")
    return 0


def cmd_models(args) -> int:
    from rich.table import Table

    from .models import list_models

    t = Table(title="models", title_justify="left")
    for col in ("name", "family", "what it is", "hyperparameters (defaults)", "lr"):
        t.add_column(col)
    for m in list_models():
        hp = ", ".join(f"{k}={v}" for k, v in m.hyperparameters().items())
        t.add_row(m.name, m.family, m.summary, hp, f"{m.default_lr:g}")
    _console().print(t)
    return 0


def cmd_datasets(args) -> int:
    from rich.table import Table

    from .data import list_families, list_sources, load_dataset

    t = Table(title="data sets", title_justify="left")
    for col in ("name", "kind", "task", "input shape", "classes", "train / val / test", "what it is"):
        t.add_column(col)
    for s in list_sources():
        d = load_dataset(s.name)
        sizes = d.sizes()
        shape = " x ".join(map(str, d.meta.input_shape))
        layout = {"series": "(L, C)", "image": "(C, H, W)", "text": "characters"}[d.meta.kind]
        t.add_row(s.name, s.kind, d.meta.task, f"{shape} {layout}", str(d.meta.n_classes), f"{sizes['train']} / {sizes['val']} / {sizes['test']}", s.summary)
    for f in list_families():  # these need an argument (a folder, a name), so nothing is loaded
        t.add_row(f.name, f.kind, "", "", "", "", f.summary)
    _console().print(t)
    return 0


def cmd_runs(args) -> int:
    from rich.table import Table

    from .store import Store

    if args.check:
        return check_runs(args)
    st = Store(args.store)
    console = _console()
    if args.comparison:
        known = {c["id"] for c in st.list_comparisons()}
        if args.comparison not in known:
            raise UserError(f"no comparison '{args.comparison}' in store '{st.root}'; 'nncompare runs' lists them")
        t = Table(title=f"runs of {args.comparison}", title_justify="left")
        for col in ("model", "seed", "status", "test acc", "params", "train s", "epochs", "folder"):
            t.add_column(col)
        for r in st.list_runs(args.comparison):
            acc = f"{100 * r['test_acc']:.1f}%" if r["test_acc"] is not None else "-"  # regression runs have none
            secs = f"{r['train_seconds']:.1f}" if r["train_seconds"] is not None else "-"
            t.add_row(r["model"], str(r["seed"]), r["status"], acc, f"{r['params'] or 0:,}", secs, str(r["epochs"] or "-"), r["path"])
        console.print(t)
        return 0
    comps = st.list_comparisons()
    if not comps:
        console.print(f"no comparisons stored in '{st.root}' yet; run 'nncompare compare mnist1d'")
        return 0
    t = Table(title=f"comparisons in {st.root}", title_justify="left")
    for col in ("id", "created", "data", "models", "seeds", "status", "runs"):
        t.add_column(col)
    for c in comps:
        n = len(st.list_runs(c["id"]))
        t.add_row(c["id"], c["created"], c["dataset"], c["models"], str(c["seeds"]), c["status"], str(n))
    console.print(t)
    return 0


def check_runs(args) -> int:
    """`nncompare runs --check`: one line per finding, a count, exit code 1 when something is wrong."""
    from .check import check_store

    findings, counts = check_store(args.store, args.comparison)
    for f in findings:
        print(f.line())
    errors = sum(f.error for f in findings)
    notes = len(findings) - errors
    print(f"checked {counts['comparisons']} comparison(s), {counts['runs']} run folder(s): {errors} error(s), {notes} note(s)")
    return 1 if errors else 0


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
        self.start = time.perf_counter()

    def __call__(self, e: dict) -> None:
        kind = e["event"]
        if kind == "plan":  # a new grid (ablate runs several one after another): start over
            self.close()
            self.done, self.in_flight = e.get("skipped", 0), {}
            self.total, self.max_epochs = e["runs"], e["max_epochs"] or 40  # None: the default budget, about 40
            if not self.quiet:
                kept = f" ({e['skipped']} finished before, kept)" if e.get("skipped") else ""
                self.console.print(
                    f"{e['runs']} runs{kept} on {e['workers']} worker(s) x {e['threads']} thread(s); storing in {e['folder']}", highlight=False
                )
            if not self.quiet and self.console.is_terminal:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

                self.progress = Progress(
                    TextColumn("[bold]{task.fields[runs]}"),
                    BarColumn(),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    TextColumn("{task.description}"),
                    console=self.console,
                    transient=True,
                )
                self.task = self.progress.add_task("", total=self.total, runs=f"0/{self.total} runs")
                self.progress.start()
            return
        if kind == "note":
            self.console.print(f"note: {e['text']}", highlight=False)
            return
        if kind == "stopping":
            self.console.print("stopping: each run ends after its current step, keeping its last epoch-end checkpoint (Ctrl-C again stops at once)", highlight=False)
            return
        if kind == "tune":
            if not self.quiet:
                self.console.print(f"tuning {', '.join(e['models'])}: {e['trials']} trials each on the validation split, {e['workers']} worker(s)", highlight=False)
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
                chosen = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in e.items() if k not in ("event", "model", "val_loss", "trials"))
                self.console.print(f"  {e['model']}: {chosen} (validation loss {e['val_loss']:.4g})", highlight=False)
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
                self.console.print(f"[{self.done}/{self.total}] {e['model']} seed {e['seed']}: {status}, {what}", highlight=False)
        if self.progress is not None:
            # completed counts in-flight runs by their share of the epoch budget, so the ETA moves smoothly
            partial = sum(min(ep / self.max_epochs, 0.95) for ep in self.in_flight.values())
            flying = "  ".join(f"{m} s{s} ep {ep}" for (m, s), ep in sorted(self.in_flight.items(), key=str))
            self.progress.update(self.task, completed=self.done + partial, description=flying, runs=f"{self.done}/{self.total} runs")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


FAMILY_SHORT = {"feed-forward": "FF", "convolutional": "CNN", "recurrent": "RNN"}  # the talk's three columns


def compact_number(x: float) -> str:
    """12,345 -> "12k", 1,234,567 -> "1.2M": keeps the table inside 80 columns."""
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    return f"{x:,.0f}"


def comparison_table(result, seeds: int):
    """The comparison as a rich table that fits an 80-column terminal; the best row marked."""
    from rich import box
    from rich.table import Table

    from .compare import format_ci, format_score, score_heading

    t = Table(title=f"{result.dataset}: {result.rows[0]['score_name'] if result.rows else 'score'} over {seeds} seed(s), mean ± std; ★ best", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    heading = score_heading(result.rows[0]["score_name"]) if result.rows else "score"
    contexts = any(r.get("context") is not None for r in result.rows)  # text: characters each prediction sees
    for col, just in (("model", "left"), ("family", "left"), ("params", "right"), ("lr", "right"), *([("context", "right")] if contexts else []), (heading, "right"), ("95% CI", "right"), ("train s", "right"), ("epochs", "right"), ("infer/s", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for r in result.rows:
        best = r["model"] == result.best
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
    return t


def baseline_line(baseline: dict) -> str:
    """The trivial predictor's score, to read the models' scores against."""
    text = f"trivial baseline ({baseline['name']}): {baseline['score_name']} {baseline['expected']:.4g}"
    if "measured" in baseline:
        text += f" in expectation, {baseline['measured']:.4g} on this test split"
    return text


def data_options_from(args) -> dict:
    """Only the data options the user gave: a loader is asked only for what it was told."""
    options = {}
    if args.label_column is not None:
        options["label_column"] = args.label_column
    if args.no_normalize:
        options["normalize"] = False
    return options


def semi_table(supervised, semi, method: str, labels: int):
    """Supervised-only against semi-supervised, per model: mean ± std and the gain."""
    from rich import box
    from rich.table import Table

    from .compare import format_score

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
    from .train.sanity import sanity

    console.print(f"overfit check on {data}: each model, every extra off, one fixed batch", highlight=False)
    results = sanity(data, models=models, on_result=lambda r: console.print(f"  {r.model}: {r.verdict} after {r.steps} steps ({r.seconds:.1f} s)", highlight=False), **options)
    console.print(sanity_table(results))
    return results


def sanity_table(results):
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, title="overfit check", title_justify="left")
    for col, justify in (("model", "left"), ("steps", "right"), ("loss start", "right"), ("loss end", "right"), ("train acc", "right"), ("verdict", "left"), ("hint", "left")):
        t.add_column(col, justify=justify, overflow="fold")
    for r in results:
        acc = "-" if r.train_acc is None else f"{100 * r.train_acc:.1f}%"
        if r.target_acc is not None and r.target_acc < 1:
            acc += f" (of {100 * r.target_acc:.1f}% possible)"
        verdict = "[green]pass[/green]" if r.passed else "[red]fail[/red]"
        t.add_row(r.model, str(r.steps), f"{r.initial_loss:.3g}", f"{r.final_loss:.3g}", acc, verdict, r.hint)
    return t


def cmd_ablate(args) -> int:
    from rich import box
    from rich.table import Table

    from .ablate import ablate, format_gain, format_value, parse_bells
    from .train import TrainConfig

    parse_bells(args.model, args.bells)  # a bad name fails before anything trains
    console = _console()
    progress = GridProgress(console, quiet=args.quiet)
    try:
        result = ablate(args.data, args.model, args.bells, seeds=args.seeds, config=TrainConfig(lr=args.lr, max_epochs=args.epochs), store=args.store, workers=args.workers, progress=progress, data_options=data_options_from(args))
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

    from .scaling import check_lengths, measure_scaling, scaling_plot, scaling_table
    from .utils import atomic_write_bytes

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


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def cmd_report(args) -> int:
    from pathlib import Path

    from .report import build_report
    from .store import Store

    folder = Path(args.comparison)
    if not folder.is_dir():
        candidate = Store(args.store).root / args.comparison
        if not candidate.is_dir():
            raise UserError(f"no comparison folder '{args.comparison}'; give its path or an id from 'nncompare runs'")
        folder = candidate
    console = _console()
    html_path, md_path = build_report(folder, progress=lambda text: console.print(text, highlight=False))
    console.print(f"report: {html_path}", highlight=False)
    console.print(f"tables: {md_path}", highlight=False)
    return 0


def train_config_from(args, **extra):
    """The TrainConfig of the training options 'compare' and 'train' share, plus `extra` fields."""
    from .train import TrainConfig

    return TrainConfig(
        lr=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        max_seconds=args.max_seconds,
        patience=args.patience,
        schedule=args.schedule,
        clip=args.clip,
        weight_decay=args.weight_decay,
        device=args.device,
        **extra,
    )


def cmd_compare(args) -> int:
    from .compare import compare, parse_models, separation_line

    config = train_config_from(args, refit=args.refit, augment=args.augment, labels=args.labels, semi=args.semi, validation="none" if args.no_validation else "split")
    if args.resume is not None and args.semi != "none":
        raise UserError("--resume cannot be combined with --semi, which runs two comparisons; resume each with its own command: the semi-supervised one, then --semi none")
    console = _console()
    models = parse_models(args.models)
    model_args = shared_model_args(args, models, console)
    if args.sanity:
        from .train.sanity import EXTRAS_OFF

        plain = {m: {k: v for k, v in a.items() if k not in EXTRAS_OFF} for m, a in model_args.items()}  # extras stay off
        results = run_sanity(console, args.data, models, data_options=data_options_from(args), lr=args.lr, device=args.device, model_args=plain)
        failed = [r.model for r in results if not r.passed]
        if failed:
            console.print(f"overfit check failed for {', '.join(failed)}; nothing compared. Fix what the hints say, or compare without --sanity.", highlight=False)
            return 1
    progress = GridProgress(console, quiet=args.quiet)
    try:
        result = compare(
            args.data,
            models=models,
            seeds=args.seeds,
            config=config,
            model_args=model_args,
            store=args.store,
            workers=args.workers,
            progress=progress,
            data_options=data_options_from(args),
            params=args.params,
            tune=args.tune,
            order=args.order,
            report=not args.no_report,
            resume=args.resume,
            backend=args.backend,
            address=args.address,
            mlflow=args.mlflow,
        )
    finally:
        progress.close()

    console.print(comparison_table(result, args.seeds))
    if result.separation:
        console.print(separation_line(result.separation, result.rows[0]["score_name"]), highlight=False)
    baseline = result.config.get("dataset_meta", {}).get("baseline")
    if baseline:
        console.print(baseline_line(baseline), highlight=False)
    if result.order:
        console.print(order_line(result.rows, result.order), highlight=False)
    console.print(f"{len(result.runs) + len(result.order or []) * args.seeds} runs in {result.wall_seconds:.1f} s; stored in {result.folder}", highlight=False)
    if result.report:
        console.print(f"report: {result.report[0]}  (tables only: {result.report[1].name})", highlight=False)
    if args.semi != "none":
        from dataclasses import replace

        console.print(f"now the same runs with the {args.labels} labelled examples only, for the supervised-only column", highlight=False)
        progress = GridProgress(console, quiet=args.quiet)
        try:
            supervised = compare(args.data, models=models, seeds=args.seeds, config=replace(config, semi="none"), model_args=model_args, store=args.store, workers=args.workers, progress=progress, data_options=data_options_from(args), params=args.params)
        finally:
            progress.close()
        console.print(semi_table(supervised, result, args.semi, args.labels))
    for r in result.runs:
        if r.get("status") == "failed":
            console.print(f"run {r['model']} seed {r['seed']} failed: {r.get('error')}", highlight=False)
        elif r.get("status") == "diverged":
            console.print(f"run {r['model']} seed {r['seed']} {r.get('error', 'diverged')}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

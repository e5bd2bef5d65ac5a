"""The commands that take a model out of nncompare or a run beyond one process: `train` (one run,
torchrun-aware), `export` (ONNX / TorchScript) and `predict` (CSV of predictions). Registered by
`cli.build_parser`; like the rest of the CLI they parse, call the library and print."""

from __future__ import annotations

# the TrainConfig fields 'train' takes as options: not augment, refit, labels, semi or validation,
# which one run refuses (runs/distributed.py)
TRAIN_OPTIONS = ("max_epochs", "max_seconds", "patience", "lr", "batch_size", "schedule", "clip", "weight_decay", "seed", "device")
TRAIN_NOTES = {
    "batch_size": "under torchrun, over all processes together: each of N processes takes 1/N of every batch",
    "device": "under torchrun each process takes the GPU of its local rank",
}


def add_commands(sub, d) -> None:
    """Add `train`, `export` and `predict` to the subcommand parsers `sub`; `defaults` is a TrainConfig()."""
    from ..export import FORMATS
    from .options import _add_csv_options, _add_shared_model_options, add_train_options

    t = sub.add_parser("train", help="train one model with one seed and store the run; under torchrun, on several processes (DistributedDataParallel)")
    t.add_argument("data", metavar="DATA", help="a data set name or path, as for 'compare'")
    t.add_argument("--model", required=True, help="the model to train (see 'nncompare models')")
    _add_shared_model_options(t)
    add_train_options(t, TRAIN_OPTIONS, notes=TRAIN_NOTES)
    t.add_argument("--label-column", default=None, help="for a CSV of series: the column holding the labels")
    t.add_argument("--no-normalize", action="store_true", help="keep raw series values instead of z-normalising each series")
    _add_csv_options(t)
    t.add_argument("--store", default=None, help="folder for runs and the index (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    t.add_argument("--out", default=None, help="write the run into this new folder instead of the store (not indexed)")
    t.add_argument("--quiet", action="store_true", help="no line per epoch")
    t.set_defaults(handler=cmd_train)

    e = sub.add_parser("export", help="write a stored run's model as ONNX or TorchScript, checked against the torch model")
    e.add_argument("run", metavar="RUN", help="a run folder, such as nncompare-runs/<comparison>/cnn-seed0")
    e.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (needs 'pip install nncompare[export]') or torchscript (default: onnx)")
    e.add_argument("--out", default=None, help="the file to write (default: model.onnx or model.pt in the run folder)")
    e.set_defaults(handler=cmd_export)

    p = sub.add_parser("predict", help="predict with a stored run on new inputs (CSV / NPZ series, images) and write a CSV of predictions and class probabilities")
    p.add_argument("run", metavar="RUN", help="a run folder, such as nncompare-runs/<comparison>/cnn-seed0")
    p.add_argument("input", metavar="INPUT", help="a .npz with X (and optionally y), a .csv of series (one per row, with or without a label; one row per time step for a run trained so), a UCR/UEA .ts or .arff file, an image file or a folder of images")
    p.add_argument("--out", default="predictions.csv", help="the CSV to write (default: predictions.csv)")
    p.add_argument("--label-column", default=None, help="for a .csv whose rows hold a label: its column, by name or 0-based index (default: the first)")
    p.set_defaults(handler=cmd_predict)


def cmd_train(args) -> int:
    from ..runs.distributed import train_run, world_size
    from .options import (
        _console,
        data_options_from,
        shared_model_args,
        train_config_from,
    )
    config = train_config_from(args)
    console = _console()
    lead = int(__import__("os").environ.get("RANK", "0")) == 0  # under torchrun, process 0 speaks for all
    model_args = shared_model_args(args, [args.model], console if lead else None).get(args.model, {})
    world = world_size()
    if lead and not args.quiet:
        where = f"{world} processes (DistributedDataParallel), {-(-args.batch_size // world)} examples each per step" if world > 1 else "one process"
        console.print(f"training {args.model} on {args.data}, seed {args.seed}, on {where}", highlight=False)

    def on_epoch(row):
        if args.quiet:
            return
        acc = f", val acc {100 * row['val_acc']:.1f}%" if row.get("val_acc") is not None else ""
        val = f", val loss {row['val_loss']:.4f}" if "val_loss" in row else ""
        console.print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}{val}{acc} ({row['seconds']:.1f} s)", highlight=False)

    result = train_run(args.data, args.model, seed=args.seed, config=config, model_args=model_args, data_options=data_options_from(args), store=args.store, out=args.out, on_epoch=on_epoch)
    if result["rank"] == 0:
        m = result["metrics"]
        score = f"{100 * m['score']:.1f}%" if m["score_name"] == "test accuracy" else f"{m['score']:.4g}"
        console.print(f"{m['score_name']} {score} after {m['epochs']} epochs ({m['stop_reason']}), {m['train_seconds']:.1f} s; stored in {result['run_dir']}", highlight=False)
    return 0


def cmd_export(args) -> int:
    from ..export import INSTALL_HINT, export_run
    from .options import _console

    done = export_run(args.run, args.format, args.out)
    console = _console()
    console.print(f"wrote {done['out']} ({done['format']})", highlight=False)
    if done.get("encoding"):
        console.print(f"the model reads encoded table rows; their encoding (columns, medians, means, categories) is in {done['encoding']}", highlight=False)
    if done["max_abs_diff"] is None:
        console.print(f"not checked against the torch model: onnxruntime is not installed ({INSTALL_HINT})", highlight=False)
    else:
        console.print(f"outputs match the torch model: max abs difference {done['max_abs_diff']:.2e} on {done['checked_on']}", highlight=False)
    return 0


def cmd_predict(args) -> int:
    from ..predict import predict_file
    from .options import _console

    done = predict_file(args.run, args.input, args.out, label_column=args.label_column)
    console = _console()
    console.print(f"wrote {done['n']} prediction(s) to {done['out']}", highlight=False)
    if done["accuracy"] is not None:
        console.print(f"accuracy against the labels in {args.input}: {100 * done['accuracy']:.1f}%", highlight=False)
    return 0

"""What every command group shares: argparse that fails with a one-line UserError, value parsers,
the model options common to several commands, the mapping from parsed options to TrainConfig and
data options, and the console."""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import UserError


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
    from ..models.layers import ACTIVATIONS

    p.add_argument("--width", type=_positive_int, default=None, help="hidden units (MLP, RNNs) or channels (CNN, TCN) for every model (default: each model's own)")
    p.add_argument("--layers", type=_positive_int, default=None, help="hidden layers (MLP), convolutions (CNN), residual blocks (TCN) or stacked recurrent layers (default: each model's own)")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default=None, help="nonlinearity of the MLP, CNN and TCN (recurrent cells keep their own)")
    p.add_argument("--dropout", type=_probability, default=None, help="dropout probability: the MLP's hidden units (default 0.5 there); the CNN's pooled features in front of its linear head (default 0); a recurrent model's inputs, outputs and the connections between stacked layers, not its recurrent state (default 0); the TCN has none")
    p.add_argument("--norm", choices=["none", "batch", "layer"], default=None, help="batch: batch norm after each MLP layer and each CNN/TCN convolution; layer: layer-normalised RNN/LSTM/GRU cells (Ba et al. 2016); default none")
    p.add_argument("--recurrent-dropout", action="store_true", help="recurrent models also drop h_{t-1} where it enters the recurrence, with the --dropout probability and one mask per sequence (Gal & Ghahramani 2016)")
    p.add_argument("--residual", action="store_true", default=None, help="residual connections between equal-width blocks of the MLP and the CNN (the TCN always has them)")


def _add_csv_options(p) -> None:
    """How a CSV is read: a table or series (overriding the rule of docs/data.md), and columns to ignore."""
    p.add_argument("--as", dest="read_as", choices=["table", "series"], default=None, help="for a CSV: read it as a table of feature columns or as one series per row (default: decided from the header and the cells, see docs/data.md)")
    p.add_argument("--drop-columns", default=None, metavar="A,B", help="for a CSV: comma-separated column names (or 0-based indexes) to ignore entirely")


def shared_model_args(args, models: list[str], console=None) -> dict:
    """Per-model hyperparameter overrides from the shared options; says which option skips which model."""
    from ..models import shared_overrides

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


def _console():
    import shutil

    from rich.console import Console

    # a pipe or CI log has no width; rich would assume 80 columns and fold the tables
    return Console(width=None if sys.stdout.isatty() else max(120, shutil.get_terminal_size().columns))


def compact_number(x: float) -> str:
    """12,345 -> "12k", 1,234,567 -> "1.2M": keeps the table inside 80 columns."""
    if x >= 1e6:
        return f"{x / 1e6:.1f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    return f"{x:,.0f}"


def data_options_from(args) -> dict:
    """Only the data options the user gave: a loader is asked only for what it was told."""
    options = {}
    if args.label_column is not None:
        options["label_column"] = args.label_column
    if args.no_normalize:
        options["normalize"] = False
    if getattr(args, "read_as", None) is not None:
        options["kind"] = args.read_as
    if getattr(args, "drop_columns", None) is not None:
        options["drop_columns"] = args.drop_columns
    return options


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def train_config_from(args, **extra):
    """The TrainConfig of the training options 'compare' and 'train' share, plus `extra` fields."""
    from ..train import TrainConfig

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

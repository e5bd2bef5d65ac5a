"""What every command group shares: argparse that fails with a one-line UserError, value parsers,
the model options common to several commands, the training options (made from TrainConfig's
fields) and the TrainConfig they give, the data options, library messages in command-line words,
and the console."""

from __future__ import annotations

import argparse
import functools
import math
import re
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
    p.add_argument("--norm", choices=["none", "batch", "layer"], default=None, help="batch: batch norm after each MLP layer and each CNN/TCN convolution; layer: layer-normalised RNN/LSTM/GRU cells (Ba et al. 2016); none: neither (default: batch for the CNN and TCN on whole series, the CNN also on text and per-step series; none otherwise)")
    p.add_argument("--recurrent-dropout", action="store_true", help="recurrent models also drop h_{t-1} where it enters the recurrence, with the --dropout probability and one mask per sequence (Gal & Ghahramani 2016)")
    p.add_argument("--residual", action="store_true", default=None, help="residual connections between equal-width blocks of the MLP and the CNN (the TCN always has them)")
    p.add_argument("--readout", choices=["last", "mean"], default=None, help="what the TCN and the recurrent models classify a whole sequence by: the mean of their per-step features over the real steps, or the last real step's (default: each model's own, see docs/models.md)")
    p.add_argument("--set", dest="model_settings", action="append", default=[], metavar="MODEL.NAME=VALUE", help="one hyperparameter of one model, as 'nncompare models' lists them; repeat for more, e.g. --set cnn.downsample=1 --set gru.segment=1 --set cnn.kernel_size=[8,5,3] (a value is read as JSON: numbers, true/false, lists; anything else as text). It wins over --width and the other shared options")


def _add_csv_options(p) -> None:
    """How a CSV is read: a table or series (overriding the rule of docs/data.md), and columns to ignore."""
    p.add_argument("--as", dest="kind", choices=["table", "series", "long"], default=None, help="for a CSV: read it as a table of feature columns, as one series per row, or in long layout (one row per time step, series grouped by an identifier column) (default: decided from the header and the cells, see docs/data.md)")
    p.add_argument("--drop-columns", default=None, metavar="A,B", help="for a CSV: comma-separated column names (or 0-based indexes) to ignore entirely")
    p.add_argument("--task", choices=["classify", "regress"], default=None, help="for a CSV or NPZ: read the label as classes or as a quantity to predict (default: a quantity when every label is a number and there are too many different ones to be classes, see docs/data.md)")


def shared_model_args(args, models: list[str], console=None) -> dict:
    """Per-model hyperparameter overrides from the shared options; says which option skips which model."""
    from ..models import shared_overrides

    if args.recurrent_dropout and not args.dropout:
        raise UserError("--recurrent-dropout uses the --dropout probability; give --dropout P as well, such as --dropout 0.2")
    recurrent_dropout = args.dropout if args.recurrent_dropout else None
    model_args = {}
    for m in models:
        overrides, notes = shared_overrides(m, width=args.width, layers=args.layers, activation=args.activation, dropout=args.dropout, norm=args.norm, residual=args.residual, recurrent_dropout=recurrent_dropout, readout=args.readout)
        if overrides:
            model_args[m] = overrides
        if console is not None:
            for note in notes:
                console.print(f"note: {for_command_line(note)}", highlight=False)
    for m, settings in model_settings(args.model_settings, models).items():
        model_args[m] = {**model_args.get(m, {}), **settings}
    return model_args


def model_settings(items: list[str], models: list[str]) -> dict:
    """{model: {hyperparameter: value}} from `--set MODEL.NAME=VALUE` items, each checked against the
    models run and their hyperparameters (a one-line UserError naming the fix); a value is JSON when it
    parses as JSON (1, 0.5, true, [8, 5, 3], null), else the text as given ("last", "auto")."""
    import json

    from ..models import get_model_info

    settings: dict = {}
    for item in items:
        target, sep, text = item.partition("=")
        model, dot, name = target.strip().partition(".")
        if not sep or not dot or not model or not name or not text.strip():
            raise UserError(f"--set {item!r}: write MODEL.NAME=VALUE, such as --set cnn.downsample=1")
        info = get_model_info(model)  # an unknown model: UserError with the valid names
        if model not in models:
            raise UserError(f"--set {item!r}: model '{model}' is not among the models run ({', '.join(models)}); run that model too, or drop the setting")
        valid = info.hyperparameters()
        if name not in valid:
            raise UserError(f"--set {item!r}: model '{model}' has no hyperparameter '{name}'; valid: {', '.join(sorted(valid))}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text.strip()
        settings.setdefault(model, {})[name] = value
    return settings


def _console():
    import shutil

    from rich.console import Console

    # a pipe or CI log has no width; rich would assume 80 columns and fold the tables. Printed text is
    # taken as it is: data set names, file names and class labels reach the console, and rich's markup
    # and emoji codes would eat "[...]" and turn "ucr:Coffee: ..." into a coffee cup
    width = None if sys.stdout.isatty() else max(120, shutil.get_terminal_size().columns)
    return Console(width=width, markup=False, emoji=False)


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
    if getattr(args, "kind", None) is not None:
        options["kind"] = args.kind
    if getattr(args, "drop_columns", None) is not None:
        options["drop_columns"] = args.drop_columns
    if getattr(args, "task", None) is not None:
        options["task"] = args.task
    return options


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# how argparse reads a training option's value, by the `parse` of its field's metadata (train/config.py)
PARSE = {"positive int": _positive_int, "positive float": _positive_float, "non-negative float": _non_negative_float, "int": int}


def train_flag(name: str) -> str:
    """The CLI flag of TrainConfig field `name`: --epochs for max_epochs, --batch-size for batch_size."""
    from ..train.config import option_name

    return "--" + option_name(name).replace("_", "-")


def add_train_options(p, names, notes: dict | None = None) -> None:
    """Add the options of the TrainConfig fields `names` to parser `p`, each from its field's
    metadata: flag, default, help, type or choices (train/config.py). `notes`: field -> what this
    command adds to the help text (the `train` command's batch is shared among its processes)."""
    from ..train.config import TrainConfig, train_options

    defaults, options = TrainConfig(), train_options()
    for name in names:
        o, default = options[name], getattr(defaults, name)
        text = o["help"] + (f"; {notes[name]}" if notes and name in notes else "")
        if isinstance(default, bool):
            p.add_argument(train_flag(name), dest=name, action="store_true", help=text)
        else:
            metavar = o["metavar"] or (None if o["choices"] else train_flag(name)[2:].upper().replace("-", "_"))  # --epochs EPOCHS
            p.add_argument(train_flag(name), dest=name, type=PARSE.get(o["parse"]), choices=o["choices"], metavar=metavar, default=default, help=text)
        if o["shorthand"]:
            flag, _, help_text = o["shorthand"]
            p.add_argument(flag, action="store_true", help=help_text)


def train_config_from(args, **extra):
    """The TrainConfig of the training options this command has (add_train_options), the others at
    their defaults, plus `extra` fields; a shorthand (--no-validation) given sets its field."""
    from ..train import TrainConfig
    from ..train.config import train_options

    given = {}
    for name, o in train_options().items():
        if not hasattr(args, name):
            continue
        given[name] = getattr(args, name)
        if o["shorthand"] and getattr(args, o["shorthand"][0].lstrip("-").replace("-", "_"), False):
            given[name] = o["shorthand"][1]
    return TrainConfig(**{**given, **extra})


# -- library messages in command-line words --------------------------------------------------------
_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:=([^`]*))?`")


_PARSER: list = []  # the command line's parser factory, registered by cli/main.py (options.py does not import main: no circle)


def register_parser(build_parser) -> None:
    """Tell for_command_line where the commands' options come from (cli/main.py calls this once)."""
    _PARSER[:] = [build_parser]
    _flags.cache_clear()


@functools.lru_cache(maxsize=1)
def _flags() -> dict:
    """dest -> (flag, takes no value) over every command's options: the flag spelt like the dest
    where there is one (--models, not its alias --model), else the first (--epochs for max_epochs)."""
    if not _PARSER:  # no command line built here (a library caller): names stay as they are
        return {}
    build_parser = _PARSER[0]
    flags = {}
    for action in build_parser()._subparsers._group_actions[0].choices.values():
        for a in action._actions:
            longs = [o for o in a.option_strings if o.startswith("--")]
            if not longs or a.dest in flags or a.dest == "help":
                continue
            spelt = "--" + a.dest.replace("_", "-")
            flags[a.dest] = (spelt if spelt in longs else longs[0], a.nargs == 0)
    return flags


def for_command_line(text: str) -> str:
    """A library message in the words of the command line: the library names a parameter in
    backquotes, `out` or `lr=0.001`, and the CLI user reads its option, --out or --lr 0.001
    (`augment=True` -> --augment, `normalize=False` -> --no-normalize). A name no command has an
    option for keeps its backquotes."""
    flags = _flags()

    def flag(m):
        name, value = m.group(1), m.group(2)
        if value is None:
            return flags[name][0] if name in flags else m.group(0)
        if value == "False" and f"no_{name}" in flags:
            return flags[f"no_{name}"][0]
        if name not in flags:
            return m.group(0)
        option, switch = flags[name]
        if switch and value == "True":
            return option
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return f"{option} {value}"

    return _NAMED.sub(flag, text)

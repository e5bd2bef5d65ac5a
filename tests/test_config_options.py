"""TrainConfig is the one source of training options (issue 21): the CLI's options and the
estimators' keywords are made from its fields' metadata, and library errors name parameters, which
the CLI puts in the words of its options."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest
from sklearn.base import clone

from nncompare.cli.compare import COMPARE_OPTIONS
from nncompare.cli.deploy import TRAIN_NOTES, TRAIN_OPTIONS
from nncompare.cli.main import build_parser, main
from nncompare.cli.options import for_command_line, train_config_from, train_flag
from nncompare.estimator import TRAIN_FIELDS, NeuralClassifier, NeuralRegressor
from nncompare.train import TrainConfig
from nncompare.train.config import option_name, train_options

SRC = Path(__file__).resolve().parents[1] / "src" / "nncompare"

# a value other than the default for every field, to see each one arrive
NOT_DEFAULT = {
    "lr": 0.01, "batch_size": 32, "max_epochs": 7, "max_seconds": 12.5, "patience": 4, "clip": 0.5, "weight_decay": 1e-4,
    "schedule": "cosine", "augment": True, "labels": 100, "semi": "pseudo", "refit": True, "validation": "split", "fitted_loss": 0.01, "seed": 3, "device": "cuda:1",
}
# what the commands that take training options need besides them
REQUIRED = {"compare": ["digits"], "train": ["digits", "--model", "mlp"], "ablate": ["digits", "--model", "mlp", "--bells", "dropout"]}
OPTIONS = {"compare": COMPARE_OPTIONS, "train": TRAIN_OPTIONS, "ablate": ("max_epochs", "lr")}


def parsers():
    return build_parser()._subparsers._group_actions[0].choices


def argv(names):
    out = []
    for name in names:
        value = NOT_DEFAULT[name]
        out += [train_flag(name)] if value is True else [train_flag(name), str(value)]
    return out


def test_every_field_has_a_description_and_a_value_that_differs_from_its_default():
    assert set(NOT_DEFAULT) == {f.name for f in fields(TrainConfig)}
    for name, option in train_options().items():
        assert option["help"], name
        assert NOT_DEFAULT[name] != getattr(TrainConfig(), name), name


def test_compare_and_train_have_every_field_as_an_option_with_the_help_of_its_metadata():
    # compare takes all but seed (it takes --seeds); train all but what one run refuses (runs/distributed.py)
    assert set(TrainConfig.__dataclass_fields__) - set(COMPARE_OPTIONS) == {"seed"}
    assert set(TrainConfig.__dataclass_fields__) - set(TRAIN_OPTIONS) == {"augment", "labels", "semi", "refit", "validation", "fitted_loss"}
    commands = parsers()
    defaults = TrainConfig()
    for command in ("compare", "train"):
        actions = {a.dest: a for a in commands[command]._actions}
        for name in OPTIONS[command]:
            option, action = train_options()[name], actions[name]
            assert action.option_strings == [train_flag(name)], (command, name)
            note = TRAIN_NOTES.get(name) if command == "train" else None
            assert action.help == option["help"] + (f"; {note}" if note else ""), (command, name)
            assert action.default == getattr(defaults, name), (command, name)
            assert action.choices == option["choices"], (command, name)
    assert train_flag("max_epochs") == "--epochs" and train_flag("batch_size") == "--batch-size"
    no_validation = {a.dest: a for a in commands["compare"]._actions}["no_validation"]
    assert no_validation.option_strings == ["--no-validation"] and no_validation.help == train_options()["validation"]["shorthand"][2]


@pytest.mark.parametrize("command", ["compare", "train", "ablate"])
def test_the_parsed_options_give_the_train_config_field_by_field(command):
    parser = build_parser()
    assert train_config_from(parser.parse_args([command, *REQUIRED[command]])) == TrainConfig()
    args = parser.parse_args([command, *REQUIRED[command], *argv(OPTIONS[command])])
    assert train_config_from(args) == TrainConfig(**{name: NOT_DEFAULT[name] for name in OPTIONS[command]})


def test_no_validation_is_the_shorthand_of_validation_none():
    parser = build_parser()
    assert train_config_from(parser.parse_args(["compare", "digits", "--no-validation"])).validation == "none"
    assert train_config_from(parser.parse_args(["compare", "digits", "--validation", "none"])).validation == "none"
    assert train_config_from(parser.parse_args(["compare", "digits", "--validation", "split", "--no-validation"])).validation == "none"


@pytest.mark.parametrize("estimator", [NeuralClassifier, NeuralRegressor])
def test_the_estimators_training_keywords_are_the_fields_by_their_names(estimator):
    # every keyword but the architecture, its layout and its validation split is a TrainConfig field,
    # by the name its metadata gives (max_epochs: epochs), with the field's default
    signature = inspect.signature(estimator.__init__).parameters
    keywords = {k for k, p in signature.items() if p.kind == p.KEYWORD_ONLY} - {"validation_fraction", "input_kind"}
    assert keywords == {option_name(name) for name in TRAIN_FIELDS}
    assert set(TRAIN_FIELDS) <= set(COMPARE_OPTIONS) | set(TRAIN_OPTIONS)
    # the fields an estimator does not offer, each for a reason (estimator.py)
    assert set(TrainConfig.__dataclass_fields__) - set(TRAIN_FIELDS) == {"max_seconds", "augment", "labels", "semi", "refit", "validation", "fitted_loss"}
    for name in TRAIN_FIELDS:
        assert signature[option_name(name)].default == getattr(TrainConfig(), name), name
    given = {option_name(name): NOT_DEFAULT[name] for name in TRAIN_FIELDS}
    model = estimator("mlp", **given)
    config = model._train_config()
    assert {name: getattr(config, name) for name in TRAIN_FIELDS} == {name: NOT_DEFAULT[name] for name in TRAIN_FIELDS}
    assert clone(model).get_params() == model.get_params() and model.get_params()["epochs"] == NOT_DEFAULT["max_epochs"]


# -- library messages name parameters -------------------------------------------------------------
FLAG = re.compile(r"(?<![\w-])--[a-z]")
# functions whose every string is a message to the user, returned rather than raised
MESSAGES = {("train/sanity.py", "diagnose"), ("models/registry.py", "shared_overrides")}


def _text(node) -> str:
    """The text of a string or f-string, its placeholders as {}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ""


def _strings(node):
    """Every string in `node`, an f-string whole (not also its pieces)."""
    pieces = {id(v) for n in ast.walk(node) if isinstance(n, ast.JoinedStr) for v in n.values}
    return [t for n in ast.walk(node) if id(n) not in pieces and (t := _text(n))]


def library_messages():
    """(file, function, line, text) for the strings of every raise outside cli/, those of the names
    its message takes from its function, the fix given to check_fits, and the MESSAGES functions."""
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("cli/"):
            continue
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if (rel, function.name) in MESSAGES:
                body = function.body[1:] if ast.get_docstring(function) else function.body
                for statement in body:
                    for text in _strings(statement):
                        yield rel, function.name, statement.lineno, text
                continue
            assigned = {}
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    assigned.setdefault(node.targets[0].id, []).append(node.value)
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    parts = [node.exc] + [v for n in ast.walk(node.exc) if isinstance(n, ast.Name) for v in assigned.get(n.id, [])]
                elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check_fits":
                    parts = node.args[2:]
                else:
                    continue
                for part in parts:
                    for text in _strings(part):
                        yield rel, function.name, node.lineno, text


def test_library_messages_name_parameters_not_command_line_flags():
    # a flag may appear in parentheses beside the parameter, "(--flag on the command line)", or in an
    # example command line in parentheses; otherwise the message names the parameter (`out`, `lr=0.1`)
    # and the CLI says it as an option (for_command_line)
    messages = list(library_messages())
    assert len(messages) > 100  # the scan sees the library's messages
    flagged = [
        f"{rel}:{line} ({function}): {text!r}"
        for rel, function, line, text in messages
        if FLAG.search(re.sub(r"\([^()]*\)", "", text))
    ]
    assert not flagged, "\n".join(flagged)


def test_the_cli_says_a_parameter_as_its_option():
    assert for_command_line("give `out` a folder") == "give --out a folder"
    assert for_command_line("try `lr=0.001`; give it more steps (`steps=400`)") == "try --lr 0.001; give it more steps (--steps 400)"
    assert for_command_line("leave out `augment=True`, `normalize=False` or `kind='table'`") == "leave out --augment, --no-normalize or --as table"
    assert for_command_line("`max_epochs=3` and `validation='none'` and `models='mlp'`") == "--epochs 3 and --validation none and --models mlp"
    assert for_command_line("`root` is no option") == "`root` is no option"


def test_a_library_error_reaches_the_command_line_in_its_words(capsys, tmp_path):
    assert main(["compare", "adding:20", "--augment", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "augmentation applies to classification" in err and "(leave out --augment)" in err and "`" not in err, err

"""`models` and `datasets`: what nncompare has."""

from __future__ import annotations

from .options import _console


def add_commands(sub, d) -> None:
    """Add this group's subcommand parsers to `sub`; `d` is a TrainConfig() for the defaults."""
    mo = sub.add_parser("models", help="list the models")
    ds = sub.add_parser("datasets", help="list the built-in data sets with their shapes")
    mo.set_defaults(handler=cmd_models)
    ds.set_defaults(handler=cmd_datasets)



def cmd_models(args) -> int:
    from rich.table import Table

    from ..models import list_models

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

    from ..data import list_families, list_sources, load_dataset

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

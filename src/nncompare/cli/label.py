"""`label-next` and `label-add`: which unlabelled inputs a person should label next (active learning),
and the labels they filled in folded back into training data (nncompare/active.py)."""

from __future__ import annotations

from .options import _console, _positive_int


def add_commands(sub, d) -> None:
    """Add this group's subcommand parsers to `sub`; `d` is a TrainConfig() for the defaults."""
    from ..active import STRATEGIES

    n = sub.add_parser("label-next", help="rank unlabelled inputs by how much labelling them should help a stored run's model; write the best k as a CSV and an HTML page to label them on")
    n.add_argument("run", metavar="RUN", help="a run folder, such as nncompare-runs/<comparison>/cnn-seed0")
    n.add_argument("pool", metavar="POOL", help="the unlabelled inputs: a .npz with X, a .csv of series (one per row), an image file or a folder of images (read as 'predict' reads them)")
    n.add_argument("--k", type=_positive_int, default=50, help="how many inputs to choose (default: 50)")
    n.add_argument("--strategy", default="entropy", metavar="{" + ",".join(STRATEGIES) + "}", help="entropy: the most uncertain prediction; margin: the smallest gap between the two likeliest classes; bald: the most disagreement between MC-dropout passes (needs a model with dropout); random: a seeded draw (default: entropy)")
    n.add_argument("--out", default="label-next", help="folder for label_next.csv and label_next.html (default: ./label-next)")
    n.add_argument("--seed", type=int, default=0, help="the random draw (random) and the dropout masks (bald) (default: 0)")
    n.add_argument("--passes", type=int, default=20, help="MC-dropout passes for bald, at least 2 (default: 20)")
    n.set_defaults(handler=cmd_label_next)

    a = sub.add_parser("label-add", help="add the inputs labelled in a filled-in label_next.csv to training data: image files into class subfolders, CSV rows with the label first, or a .npz's X and y")
    a.add_argument("labelled", metavar="LABELLED", help="the label_next.csv that 'label-next' wrote, its label column filled in")
    a.add_argument("pool", metavar="POOL", help="the pool 'label-next' ranked")
    a.add_argument("--out", required=True, help="where to add them: a folder of class subfolders (images; may be your training folder), a .csv (new, or your training CSV with the label first: rows appended) or a .npz (new, or your training .npz: X and y appended)")
    a.set_defaults(handler=cmd_label_add)


def cmd_label_next(args) -> int:
    from ..active import label_next

    chosen = label_next(args.run, args.pool, k=args.k, strategy=args.strategy, out=args.out, seed=args.seed, passes=args.passes)
    console = _console()
    console.print(f"{len(chosen.rows)} of {chosen.pool_size} inputs to label next, by {chosen.strategy}:", highlight=False)
    console.print(chosen.table(), highlight=False, markup=False)
    console.print(f"wrote {chosen.csv_path} and {chosen.html_path}", highlight=False)
    console.print(f"fill in the label column (or label on the page and save), then: nncompare label-add {chosen.csv_path} {args.pool} --out TRAINING_DATA", highlight=False, markup=False, soft_wrap=True)
    return 0


def cmd_label_add(args) -> int:
    from ..active import add_labels

    done = add_labels(args.labelled, args.pool, args.out)
    _console().print(f"added {done['added']} labelled input(s) to {done['out']} ({done['kind']})", highlight=False)
    return 0

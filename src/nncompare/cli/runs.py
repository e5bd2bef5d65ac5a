"""`runs` (list, --check) and `report`: the commands that read the store."""

from __future__ import annotations

from ..errors import UserError
from .options import _console


def add_commands(sub, d) -> None:
    """Add this group's subcommand parsers to `sub`; `d` is a TrainConfig() for the defaults."""
    rp = sub.add_parser("report", help="write report.html and report.md of a stored comparison again (analyses only; nothing is trained)")
    rp.add_argument("comparison", metavar="DIR", help="the comparison folder, or its id in the store")
    rp.add_argument("--store", default=None, help="the store folder, for an id (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    r = sub.add_parser("runs", help="list stored comparisons, or the runs of one")
    r.add_argument("comparison", nargs="?", help="a comparison id to list its runs")
    r.add_argument("--store", default=None, help="the store folder (default: $NNCOMPARE_STORE or ./nncompare-runs)")
    r.add_argument("--check", action="store_true", help="read every stored file back and report missing, corrupt or inconsistent ones (exit code 1 if any)")

    rp.set_defaults(handler=cmd_report)
    r.set_defaults(handler=cmd_runs)



def cmd_runs(args) -> int:
    from rich.table import Table

    from ..store import Store

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
    from ..store.check import check_store

    findings, counts = check_store(args.store, args.comparison)
    for f in findings:
        print(f.line())
    errors = sum(f.error for f in findings)
    notes = len(findings) - errors
    print(f"checked {counts['comparisons']} comparison(s), {counts['runs']} run folder(s): {errors} error(s), {notes} note(s)")
    return 1 if errors else 0


def cmd_report(args) -> int:
    from pathlib import Path

    from ..report import build_report
    from ..store import Store

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

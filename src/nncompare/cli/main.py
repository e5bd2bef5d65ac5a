"""The `nncompare` command: parses, calls the library, prints. Each command group lives in its own
module of this package and registers its parsers with `add_commands`; nothing else lives here. A
library error names parameters (`out`, `lr=0.001`); the user reads it with the options they typed
(--out, --lr 0.001: cli/options.py's for_command_line)."""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from . import compare, deploy, generate, info, label, runs
from .options import _Parser, for_command_line, register_parser


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__
    from ..train import TrainConfig

    d = TrainConfig()
    p = _Parser(prog="nncompare", description="Feed-forward, convolutional or recurrent: which network fits this data, and why?")
    p.add_argument("--version", action="version", version=f"nncompare {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for group in (compare, generate, info, runs, deploy, label):  # one module per command group
        group.add_commands(sub, d)
    return p


def main(argv=None) -> int:
    from ..runs.grid import ComparisonInterrupted

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return args.handler(args)
    except UserError as e:
        print(f"nncompare: error: {for_command_line(str(e))}", file=sys.stderr)
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


register_parser(build_parser)


if __name__ == "__main__":
    sys.exit(main())

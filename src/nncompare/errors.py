"""The one error type a user can cause: unknown names, bad files, bad values."""


class UserError(Exception):
    """A problem in what the user asked for; the message says what was wrong and what would be right.

    The CLI prints it on one line and exits with code 2.
    """

    def __init__(self, message: str):
        # one line, always: the CLI prints it as is
        super().__init__(" ".join(str(message).split()))


def did_you_mean(name: str, valid) -> str:
    """Return "valid choices: a, b, c" with a close match first when there is one."""
    import difflib

    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}valid choices: {', '.join(valid)}"


def run_main(main) -> int:
    """`main()`'s exit code, or 2 after printing a UserError on one line, as the CLI does.

    For scripts built on nncompare (the benchmarks): `sys.exit(run_main(main))`.
    """
    import os
    import sys

    try:
        return main()
    except UserError as e:
        print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
        return 2

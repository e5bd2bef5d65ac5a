"""`generate`: text written by a model trained on text."""

from __future__ import annotations

from .options import _non_negative_float, _positive_int


def add_commands(sub, d) -> None:
    """Add this group's subcommand parsers to `sub`; `d` is a TrainConfig() for the defaults."""
    g = sub.add_parser("generate", help="write text with a model trained on text (a stored run of 'compare text' or 'compare text:FILE')")
    g.add_argument("run", metavar="RUN", help="a run folder, e.g. nncompare-runs/<comparison>/lstm-seed0 ('nncompare runs COMPARISON' lists them)")
    g.add_argument("--prompt", default="", help="text to start from, in characters of the training text (default: none, as after a line break)")
    g.add_argument("--chars", type=_positive_int, default=500, help="characters to write after the prompt (default: 500)")
    g.add_argument("--temperature", type=_non_negative_float, default=1.0, help="1 samples the model's distribution, lower is more conservative, 0 always takes the most likely character (default: 1)")
    g.add_argument("--top-k", type=_positive_int, default=None, help="sample among the K most likely characters only (default: all)")
    g.add_argument("--seed", type=int, default=0, help="seed of the sampling draws; the same seed writes the same text (default: 0)")

    g.set_defaults(handler=cmd_generate)



def cmd_generate(args) -> int:
    from ..sampling import generate, write_utf8

    text = generate(args.run, prompt=args.prompt, chars=args.chars, temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    write_utf8(args.prompt + text + "\n")
    return 0

"""Ablation: what each bell or whistle adds to one model. The plain model (every extra off), each bell
added alone, and all of them together, each over the same seeds; the gain of a variant is the mean
± std over seeds of its score minus the plain model's score with the same seed."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from ..errors import UserError
from ..models import get_model_info
from ..train import TrainConfig
from ..train.sanity import EXTRAS_OFF
from .grid import compare

# bell -> (model hyperparameters, training settings) that turn it on
BELLS = {
    "norm": ({"norm": "batch"}, {}),
    "dropout": ({"dropout": 0.2}, {}),
    "residual": ({"residual": True}, {}),
    "cosine": ({}, {"schedule": "cosine"}),
    "weight-decay": ({}, {"weight_decay": 1e-4}),
    "augment": ({}, {"augment": True}),
}


@dataclass
class Ablation:
    dataset: str
    model: str
    rows: list[dict]  # one per variant: name, scores, mean, std, gain_mean, gain_std
    score_name: str
    higher_is_better: bool

    def table(self) -> str:
        change = "gain vs plain" if self.higher_is_better else "change vs plain (lower is better)"
        width = max(len("variant"), *(len(r["variant"]) for r in self.rows))
        lines = [f"{'variant':{width}} {'score (mean ± std)':>20} {change + ' (mean ± std)':>28}"]
        for r in self.rows:
            lines.append(f"{r['variant']:{width}} {format_value(r['mean'], r['std'], self.score_name):>20} {format_gain(r, self.score_name):>28}")
        return "\n".join(lines)


def format_value(mean: float, std: float, score_name: str) -> str:
    if score_name == "test accuracy":
        return f"{100 * mean:.1f} ± {100 * std:.1f}"
    return f"{mean:.4g} ± {std:.2g}"


def format_gain(row: dict, score_name: str) -> str:
    if row["variant"] == "plain":
        return "-"
    if score_name == "test accuracy":
        return f"{100 * row['gain_mean']:+.1f} ± {100 * row['gain_std']:.1f} points"
    return f"{row['gain_mean']:+.4g} ± {row['gain_std']:.2g}"


def bell_model_args(model: str, bell: str) -> dict:
    """The hyperparameters that turn `bell` on for `model`: norm is batch norm for convolutional and
    feed-forward models, a layer-normalised cell for recurrent ones."""
    if bell == "norm" and get_model_info(model).family == "recurrent":
        return {"norm": "layer"}
    return dict(BELLS[bell][0])


def parse_bells(model: str, bells) -> list[str]:
    """Bell names, checked against BELLS and against what `model` has."""
    if isinstance(bells, str):
        bells = [b.strip() for b in bells.split(",") if b.strip()]
    if not bells:
        raise UserError(f"no bells given; choose from {', '.join(BELLS)}")
    valid = get_model_info(model).hyperparameters()
    for b in bells:
        if b not in BELLS:
            raise UserError(f"unknown bell '{b}'; choose from {', '.join(BELLS)}")
        missing = [k for k in BELLS[b][0] if k not in valid]
        if missing:
            usable = [name for name, (args, _) in BELLS.items() if all(k in valid for k in args)]
            raise UserError(f"bell '{b}' does not apply to {model}; for {model} choose from {', '.join(usable)}")
    if len(set(bells)) != len(bells):
        raise UserError("a bell is listed twice; list each once")
    return list(bells)


def ablate(data: str, model: str, bells, seeds: int = 3, config: TrainConfig | None = None, store=None, workers=None, progress=None, data_options=None) -> Ablation:
    """Train `model` plain and with each of `bells` (and all together), over `seeds` seeds each."""
    bells = parse_bells(model, bells)
    config = (config or TrainConfig()).validate()
    valid = get_model_info(model).hyperparameters()
    plain_args = {k: v for k, v in EXTRAS_OFF.items() if k in valid}
    variants = [("plain", [])] + [(f"+{b}", [b]) for b in bells]
    if len(bells) > 1:
        variants.append(("+" + " +".join(bells), bells))
    rows, by_seed_plain = [], None
    score_name, higher = "test accuracy", True
    for name, on in variants:
        args, train = dict(plain_args), {}
        for b in on:
            args.update(bell_model_args(model, b))
            train.update(BELLS[b][1])
        result = compare(data, models=[model], seeds=seeds, config=replace(config, **train), model_args={model: args}, store=store, workers=workers, progress=progress, data_options=data_options)
        row = result.rows[0]
        if row["n_done"] < row["n_runs"]:
            raise UserError(f"{model} {name}: {row['n_runs'] - row['n_done']} of {row['n_runs']} runs failed; see 'nncompare runs {result.folder.name}'")
        score_name, higher = row["score_name"], row["higher_is_better"]
        by_seed = {r["seed"]: r["score"] for r in result.runs}
        if by_seed_plain is None:
            by_seed_plain = by_seed
        diffs = [by_seed[s] - by_seed_plain[s] for s in sorted(by_seed)]
        rows.append(
            {
                "variant": name,
                "bells": on,
                "model_args": args,
                "train": train,
                "scores": [by_seed[s] for s in sorted(by_seed)],
                "mean": row["score_mean"],
                "std": row["score_std"],
                "gain_mean": statistics.fmean(diffs),
                "gain_std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                "folder": str(result.folder),
            }
        )
    return Ablation(dataset=data, model=model, rows=rows, score_name=score_name, higher_is_better=higher)

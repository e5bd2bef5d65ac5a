"""Each model's seeds predicting together: what a comparison's runs give as one model, for nothing more
than their inference.

A comparison trains every model several times (seeds); the table reports how one run does on average.
The same runs averaged into one predictor (the mean of their class probabilities, or of their values
for regression) usually score higher, the more so the more the seeds disagree: an ensemble of
networks that differ only in their initial weights is how the strongest deep models for time series
are used (InceptionTime averages five, Ismail Fawaz et al. 2020; Fawaz et al. 2019, "Deep neural
network ensembles for time series classification"). It costs the seeds' training time together and
their inference each time, which the verdict says beside the score.

Scored on the test split the runs were scored on; classification (one label per input) by accuracy,
regression by MSE on the targets as the runs were trained on them. Tasks with a label per position
(text, per-step series) are left out: their score is not one prediction per input.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.inference import model_outputs

MIN_SEEDS = 2  # one run is no ensemble


def seed_ensembles(dataset, folder: Path, models: list[str], seeds: list[int]) -> dict:
    """model -> {"score_name", "score", "seeds", "train_seconds"} for each model with at least
    MIN_SEEDS finished runs stored in `folder` (`<model>-seed<k>`); {} when the task is not one
    prediction per input."""
    from ..store import load_run, read_metrics

    meta = dataset.meta
    if meta.task not in ("classify", "regress"):
        return {}
    test = dataset.test
    out = {}
    for model in models:
        outputs, seconds = [], 0.0
        for seed in seeds:
            run_dir = folder / f"{model}-seed{seed}"
            if not (run_dir / "metrics.json").is_file():
                continue
            metrics = read_metrics(run_dir)
            if metrics.get("status") != "done":  # a diverged or failed run is no member
                continue
            run = load_run(run_dir)
            raw = model_outputs(run.model, test.x, lengths=test.lengths).double()
            outputs.append(torch.softmax(raw, dim=-1) if meta.task == "classify" else raw.reshape(len(raw), -1))
            seconds += float(metrics.get("train_seconds") or 0.0)
        if len(outputs) < MIN_SEEDS:
            continue
        mean = torch.stack(outputs).mean(0)
        if meta.task == "classify":
            score_name, score = "test accuracy", float((mean.argmax(-1) == test.y).double().mean())
        else:
            score_name, score = "test MSE", float(((mean - test.y.double().reshape(mean.shape)) ** 2).mean())
        out[model] = {"score_name": score_name, "score": score, "seeds": len(outputs), "train_seconds": seconds}
    return out


"""Read a stored comparison back and run the analyses on its models: the report's data, nothing trained."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..store import read_history, load_run, read_metrics

PERMUTED = "permuted"  # run folders `<model>-permuted-seed<k>` hold the order-sensitivity runs


def read_comparison(folder: str | Path) -> dict:
    """comparison.json, summary.json and every run's metrics and history, from the folder alone."""
    folder = Path(folder)
    spec_path = folder / "comparison.json"
    if not spec_path.is_file():
        raise UserError(f"'{folder}' is not a comparison folder (no comparison.json); `nncompare runs` lists them")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8")) if (folder / "summary.json").is_file() else None
    except json.JSONDecodeError as e:
        raise UserError(f"'{folder}' has a corrupt comparison.json or summary.json ({e}); run the comparison again") from None
    if summary is None or not summary.get("rows"):
        raise UserError(f"comparison '{folder.name}' has no results yet (no summary.json); let it finish, then run `nncompare report` again")
    runs: dict[str, list[dict]] = {}
    permuted: dict[str, list[dict]] = {}
    for model in spec["models"]:
        for seed in spec["seeds"]:
            for variant, bucket in ((f"{model}-seed{seed}", runs), (f"{model}-{PERMUTED}-seed{seed}", permuted)):
                d = folder / variant
                if not (d / "metrics.json").is_file():
                    continue
                try:
                    metrics = read_metrics(d)  # metrics.json with timing.json merged in
                except UserError:
                    continue  # `nncompare runs --check` reports it; the report uses the runs it can read
                bucket.setdefault(model, []).append({"path": d, "metrics": metrics, "history": read_history(d / "history.csv")})
    return {"folder": folder, "spec": spec, "summary": summary, "runs": runs, "permuted": permuted}


def analyse_comparison(comparison: dict, progress=None) -> dict:
    """Run every analysis on each model's first finished seed; returns model -> analysis data."""
    from ..analysis.run import analyse_run

    say = progress or (lambda text: None)
    analyses, dataset = {}, None
    for model, runs in comparison["runs"].items():
        done = [r for r in runs if r["metrics"].get("status") == "done"]
        if not done:
            continue
        stored = load_run(done[0]["path"])
        if dataset is None:
            say(f"loading {stored.config['dataset']}")
            dataset = stored.dataset()
        say(f"analysing {model} (seed {stored.config['seed']})")
        analyses[model] = {"seed": stored.config["seed"], "config": stored.config, **analyse_run(stored.model, dataset, seed=0)}
        if dataset.meta.kind == "text":
            analyses[model]["samples"] = text_samples(stored)
    return {"analyses": analyses, "dataset": dataset}


SAMPLE_TEMPERATURES = (0.5, 1.0)
SAMPLE_CHARS = 300


def text_samples(stored) -> dict:
    """What a text model writes from the start of a line: SAMPLE_CHARS characters at each of two
    temperatures (seed 0, so the report repeats its samples)."""
    from ..sampling import generate

    return {t: generate(stored, prompt="", chars=SAMPLE_CHARS, temperature=t, seed=0) for t in SAMPLE_TEMPERATURES}

"""report.html (self-contained: images inline as data URIs, no scripts, no server) and report.md."""

from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from . import plots
from .overview import overview_rows, verdict

SECTIONS = [
    ("summary", "Summary and verdict"),
    ("overview", "Overview: feed-forward, convolutional, recurrent"),
    ("curves", "Learning curves"),
    ("confusion", "Confusion matrices"),
    ("uncertainty", "Least confident and most uncertain"),
    ("calibration", "Calibration"),
    ("neurons", "Neurons"),
    ("span", "Effective span"),
    ("order", "Order sensitivity"),
    ("config", "Configuration and versions"),
]

TEXT_SECTION = ("samples", "What each model writes")  # text data sets only

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:12px 16px;color:#1d1d1f}
h1{font-size:1.6em;margin:.4em 0}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{font-size:1.02em;margin:1.2em 0 .3em}
nav a{margin-right:.8em;white-space:nowrap;font-size:.9em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#eef7ee}
tr.reference td{color:#555;font-style:italic}
img{max-width:100%;height:auto;display:block;margin:.4em 0}
.verdict{background:#f5f5f7;border-left:4px solid #2ca02c;padding:.6em 1em}
.note{color:#666;font-size:.88em}
pre{background:#f5f5f7;padding:.6em;overflow-x:auto;font-size:.8em}
.chars{font:13px/1.6 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all;background:#fafafa;padding:.5em}
.ctx{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = ""
    for k, r in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        body += f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _label(meta, k: int) -> str:
    names = meta.class_names
    if meta.kind == "text":
        return _visible(names[k])
    return str(names[k]) if names and k < len(names) else str(k)


def _visible(ch: str) -> str:
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(ch, ch)


def results_rows(summary: dict) -> tuple[list[str], list[list[str]], list[str]]:
    from ..results import format_ci, format_ensemble, format_reference_score, format_score, score_heading

    rows = summary["rows"]
    # each model's seeds predicting together (runs/ensemble.py), beside what one run gives on average
    together = summary.get("ensembles") or {}
    spread = " (mean ± std)" if any(r["n_done"] > 1 for r in rows) else ""  # one seed: a single value each
    # the kept epochs' training accuracy, beside the test score: what the verdict's sentence on fitting reads
    fits = any(math.isfinite(r.get("train_acc_mean", math.nan)) for r in rows) and rows[0]["score_name"] == "test accuracy"
    header = ["model", "params", "lr", score_heading(rows[0]["score_name"]) + spread, "95% CI", *(["seeds together"] if together else []), *(["train acc %"] if fits else []), "epochs", "train s", "infer/s"]
    out = []
    for r in rows:
        fit = [f"{100 * r['train_acc_mean']:.1f}" if math.isfinite(r.get("train_acc_mean", math.nan)) else "-"] if fits else []
        ensemble = [format_ensemble(together[r["model"]]) if r["model"] in together else "-"] if together else []
        out.append([r["model"], f"{r['params']:,}", f"{r['lr']:g}", format_score(r), format_ci(r), *ensemble, *fit, f"{r['epochs']:.0f}" if r["epochs"] == r["epochs"] else "-", f"{r['train_seconds']:.1f}", f"{r['inference_per_second']:,.0f}"])
    classes = ["best" if r["model"] in (summary.get("tied") or [summary.get("best")]) else "" for r in rows]
    ref = summary.get("reference")
    for r in [ref, *ref.get("also", [])] if ref else []:  # shown under the networks, never ranked among them
        per_second = f"{r['inference_per_second']:,.0f}" if r["inference_per_second"] == r["inference_per_second"] else "-"
        out.append([f"{r['model']} (non-neural reference)", "-", "-", format_reference_score(r), "-", *(["-"] if together else []), *(["-"] if fits else []), "-", f"{r['train_seconds']:.1f}", per_second])
        classes.append("reference")
    return header, out, classes


def permuted_rows(comparison: dict) -> dict:
    """Aggregated rows of the order-sensitivity runs (model -> row), if the comparison has them."""
    from ..results import aggregate

    if comparison["summary"].get("order"):
        return {r["model"]: r for r in comparison["summary"]["order"]}
    runs = [r["metrics"] for rs in comparison["permuted"].values() for r in rs]
    if not runs:
        return {}
    models = list(comparison["permuted"])
    return {r["model"]: r for r in aggregate(runs, models, {m: comparison["spec"].get("learning_rates", {}).get(m, 0.0) for m in models})}


def render(comparison: dict, analysed: dict) -> tuple[str, str]:
    """(report.html, report.md) text for a comparison and its analyses."""
    spec, summary = comparison["spec"], comparison["summary"]
    analyses, dataset = analysed["analyses"], analysed["dataset"]
    meta = dataset.meta if dataset is not None else None
    rows = summary["rows"]
    perm = permuted_rows(comparison)
    task = meta.task if meta else "classify"
    title = f"nncompare: {spec['dataset']}"
    say = verdict(spec["dataset"], rows, summary.get("best"), summary.get("separation"), analyses, perm, tied=summary.get("tied"), reference=summary.get("reference"), protocol=spec.get("protocol"), search=search_sentence(spec), target_scaling=meta.target_scaling if meta else None, ensembles=summary.get("ensembles"))
    ov = overview_rows(rows, analyses, perm, task)
    models = [r["model"] for r in rows]
    parts: dict[str, str] = {}

    # summary
    header, res, classes = results_rows(summary)
    desc = html.escape(meta.description) if meta else ""
    parts["summary"] = (
        f'<p class="verdict">{html.escape(say)}</p>'
        + _table(header, res, classes)
        + f'<p class="note">{html.escape(spec["dataset"])}: {desc}{html.escape(trained_on(spec))}. {len(models)} models × {len(spec["seeds"])} seeds; '
        + f'comparison {html.escape(comparison["folder"].name)}; {summary.get("wall_seconds", 0):.0f} s of wall time.</p>'
        + "".join(f'<p class="note">{html.escape(line)}</p>' for line in skipped_notes(comparison))
    )
    # overview
    parts["overview"] = _table([""] + models, [[name] + [cells[m] for m in models] for name, cells in ov])

    # learning curves
    histories = {m: [r["history"] for r in comparison["runs"].get(m, [])] for m in models}
    if any("val_loss" in row for hs in histories.values() for h in hs for row in h):
        curves = _img(plots.learning_curves(histories, "val_loss", "validation loss"), "validation loss per epoch")
    else:  # --no-validation: the training loss is what chose the kept weights
        curves = _img(plots.learning_curves(histories, "train_loss", "training loss"), "training loss per epoch")
    if any("val_acc" in row for hs in histories.values() for h in hs for row in h):
        curves += _img(plots.learning_curves(histories, "val_acc", "validation accuracy"), "validation accuracy per epoch")
    parts["curves"] = '<p class="note">Mean over seeds as a line, the range of the seeds as a band.</p>' + curves

    classified = {m: a for m, a in analyses.items() if "confusion" in a}
    if classified:
        k = meta.n_classes
        if k <= 40:
            parts["confusion"] = '<p class="note">Rows: true class; columns: predicted; each row sums to 100% (test split, first seed).</p>' + _img(
                plots.confusion_matrices({m: a["confusion"]["normalised"] for m, a in classified.items()}, meta.class_names), "confusion matrices"
            )
        else:
            parts["confusion"] = f'<p class="note">{k} classes: too many to draw; the most confused pairs per model:</p>' + _confused_pairs(classified, meta)
        parts["uncertainty"] = _uncertainty(classified, dataset)
        parts["calibration"] = (
            '<p class="note">Top-class probability against accuracy in ten bins; the expected calibration error (ECE) is the '
            "count-weighted gap to the diagonal (Guo et al. 2017).</p>"
            + _img(plots.reliability({m: a["calibration"] for m, a in classified.items()}), "reliability diagram")
            + _table(["model", "ECE", "test accuracy (seed analysed)"], [[m, f"{a['calibration']['ece']:.3f}", f"{100 * a['accuracy']:.1f}%"] for m, a in classified.items()])
        )
    else:
        parts["confusion"] = _regression_errors(comparison, analyses, dataset)
        for key in ("uncertainty", "calibration"):
            parts[key] = '<p class="note">A regression task: no classes to confuse and no probabilities to calibrate.</p>'
    parts["neurons"] = _neurons(analyses, dataset)
    parts["span"] = _span(analyses, meta, models, task)
    if meta is not None and meta.kind == "table" and not perm:
        parts["order"] = '<p class="note">A table\'s columns have no order for a model to depend on; only the MLP reads tables, and it sees every column at once.</p>'
    else:
        parts["order"] = _order(rows, perm)
    versions = next((a["config"].get("versions") for a in analyses.values()), {})
    parts["config"] = _config(spec, versions)

    sections = list(SECTIONS)
    if not classified and task == "regress":  # the confusion matrices' place holds predicted against true values
        sections[sections.index(("confusion", "Confusion matrices"))] = ("confusion", "Predicted against true")
    if any("samples" in a for a in analyses.values()):
        sections.insert(sections.index(("neurons", "Neurons")), TEXT_SECTION)
        parts["samples"] = _samples(analyses)
    nav = "<nav>" + " ".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name in sections) + "</nav>"
    body = "".join(f'<section id="{key}"><h2>{html.escape(name)}</h2>{parts[key]}</section>' for key, name in sections)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{nav}{body}</body></html>\n"
    )
    return page, _markdown(title, say, header, res, ov, models, classified, analyses, spec, rows, perm, skipped_notes(comparison))


def _regression_errors(comparison: dict, analyses: dict, dataset) -> str:
    """Regression, in the place of the confusion matrices: each model's predictions against the true
    values of the test split (the seed analysed), in the file's units where its targets were
    standardised, and the errors in numbers."""
    from ..models.inference import model_outputs
    from ..store import load_run

    note = '<p class="note">A regression task: no classes to confuse and no probabilities to calibrate.</p>'
    if dataset is None or dataset.meta.task != "regress" or dataset.meta.n_outputs > 1:
        return note
    scaling = dataset.meta.target_scaling or {"mean": 0.0, "std": 1.0}
    true = scaling["mean"] + scaling["std"] * dataset.test.y.double().numpy().reshape(-1)
    points, rows = {}, []
    for model, analysis in analyses.items():
        run_dir = comparison["folder"] / f"{model}-seed{analysis['seed']}"
        if not (run_dir / "model.safetensors").is_file():
            continue
        raw = model_outputs(load_run(run_dir).model, dataset.test.x, lengths=dataset.test.lengths).double().numpy().reshape(-1)
        pred = scaling["mean"] + scaling["std"] * raw
        error = pred - true
        worst = int(np.abs(error).argmax())
        points[model] = (true, pred)
        rows.append([model, f"{math.sqrt(float(np.mean(error**2))):.4g}", f"{float(np.mean(np.abs(error))):.4g}", f"{error[worst]:+.4g} (test example {worst}, true {true[worst]:.4g})"])
    if not points:
        return note
    unit = "(the file's units)" if dataset.meta.target_scaling else "value"
    return (
        f'<p class="note">A regression task: no classes to confuse. Instead, each model\'s predictions against the true values of the test split '
        f"(first seed), {'in the units of the file' if dataset.meta.target_scaling else 'as the data set gives them'}; the dashed line is a perfect prediction.</p>"
        + _img(plots.predicted_against_true(points, unit), "predicted against true values")
        + _table(["model", "RMSE", "mean absolute error", "largest error"], rows)
    )


def _samples(analyses: dict) -> str:
    """Each text model's writing from the start of a line, at two temperatures (nncompare generate)."""
    out = ['<p class="note">Sampled one character at a time from the start of a line (seed 0); temperature 0.5 keeps to likely '
           "characters, 1 samples the model's own distribution. <code>nncompare generate RUN</code> writes more.</p>"]
    for m, a in analyses.items():
        for t, text in a.get("samples", {}).items():
            out.append(f"<h3>{html.escape(m)}, temperature {t:g}</h3><div class=\"chars\">{html.escape(text)}</div>")
    return "".join(out)


UNSET = {  # what a setting left at None means (see TrainConfig)
    "max_epochs": "default: 40, more on a small data set (at least 1000 steps)",
    "patience": "default: 10 epochs, scaled with the default epochs",
    "lr": "each model's own (above)",
    "max_seconds": "no limit",
}


def skipped_notes(comparison: dict) -> list[str]:
    """A sentence for each run that skipped optimizer steps whose gradient was not finite
    (train/steps.py optimizer_step), and whether it stopped as stalled (train/epochs.py stalled)."""
    out = []
    for model, runs in comparison["runs"].items():
        for run in runs:
            m = run["metrics"]
            if m.get("skipped_steps"):
                stalled = f", and stopped after epoch {m.get('epochs')} because every step of its last epochs was skipped" if m.get("stop_reason") == "stalled" else ""
                out.append(f"{model} seed {m.get('seed')} skipped {m['skipped_steps']} training step(s) whose gradient was not finite{stalled}; "
                           f"the weights of its best epoch ({m.get('best_epoch')}) were kept and tested.")
    return out


def trained_on(spec: dict) -> str:
    """What the seeded runs trained on, where the data's description of its splits does not say it:
    without a validation split (the small-set protocol, or --no-validation) train and val are one."""
    sizes = spec.get("sizes") or {}
    no_split = spec.get("protocol") or spec.get("train", {}).get("validation") == "none"
    if not no_split or not sizes.get("val"):
        return ""
    return f"; every run trained on all {sizes.get('train', 0) + sizes['val']} train + val examples (no validation split)"


def _setting(key: str, value) -> str:
    if value is None:
        return UNSET.get(key, "none")
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _config(spec: dict, versions: dict) -> str:
    """The settings that decide the numbers as a table; the whole comparison.json folded below it."""
    train = spec.get("train", {})
    keys = ["max_epochs", "patience", "batch_size", "lr", "schedule", "clip", "weight_decay", "augment", "refit", "validation", "fitted_loss", "max_seconds", "device"]
    rows = [["data set", spec["dataset"] + (f" {json.dumps(spec['data_options'])}" if spec.get("data_options") else "")], ["models", ", ".join(spec["models"])], ["seeds", ", ".join(map(str, spec["seeds"]))]]
    rows += [["learning rates", ", ".join(f"{m} {lr:g}" for m, lr in spec.get("learning_rates", {}).items())]]
    rows += search_rows(spec)
    rows += [[k.replace("_", " "), _setting(k, train[k])] for k in keys if k in train]
    rows += [[f"{name} version", v] for name, v in versions.items()]
    return (
        _table(["setting", "value"], rows)
        + "<details><summary>comparison.json (every option, each model's hyperparameters)</summary><pre>"
        + html.escape(json.dumps(spec, indent=1, sort_keys=True))
        + "</pre></details>"
    )


def search_sentence(spec: dict) -> str | None:
    """One sentence for the verdict when a search chose the settings (runs/tune.py)."""
    search, tuning = spec.get("search") or {}, spec.get("tuning") or {}
    if not tuning:
        return None
    trials = sorted(t.get("trials", 0) for t in tuning.values())
    span = f"{trials[0]}" if trials[0] == trials[-1] else f"{trials[0]}-{trials[-1]}"
    bought = f"a {search['budget']:g} s budget shared equally, {span} trials a model" if search.get("budget") else f"{span} trials a model"
    return f"Each model's settings were searched first on a validation split ({bought}); its rows train with what the search chose (Configuration)."


def search_rows(spec: dict) -> list[list[str]]:
    """[setting, value] rows saying what the search before the seeded runs had and chose (runs/tune.py); none without one."""
    search, tuning = spec.get("search") or {}, spec.get("tuning") or {}
    if not tuning:
        return []
    bought = " or ".join([f"{search['trials']} trials per model"] * bool(search.get("trials")) + [f"a {search['budget']:g} s budget shared equally"] * bool(search.get("budget")))
    rows = [["search", f"{bought or 'trials'} on a validation split (Optuna TPE, successive-halving pruning); the test split was not used"]]
    for m, t in tuning.items():
        chosen = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in t.items() if k not in ("val_loss", "trials", "pruned", "seconds"))
        spent = f", {t['seconds']:g} s" if "seconds" in t else ""
        rows.append([f"chosen for {m}", f"{chosen} ({t.get('trials', '?')} trials, {t.get('pruned', 0)} pruned{spent}; validation loss {t['val_loss']:.4g})"])
    return rows


def _confused_pairs(classified: dict, meta) -> str:
    rows = []
    for m, a in classified.items():
        c = a["confusion"]["counts"].copy()
        np.fill_diagonal(c, 0)
        flat = np.argsort(-c, axis=None)[:3]
        pairs = [f"{_label(meta, i)} → {_label(meta, j)} ({c[i, j]})" for i, j in zip(*np.unravel_index(flat, c.shape)) if c[i, j] > 0]
        rows.append([m, "; ".join(pairs) or "none"])
    return _table(["model", "most frequent mistakes (true → predicted, count)"], rows)


def _uncertainty(classified: dict, dataset) -> str:
    meta, test = dataset.meta, dataset.test
    out = ['<p class="note">The test examples each model was least sure of (lowest top-class probability); for models with '
           "dropout, also the most uncertain under MC dropout (predictive entropy over stochastic passes, Gal &amp; Ghahramani 2016).</p>"]
    for m, a in classified.items():
        out.append(f"<h3>{html.escape(m)}: least confident</h3>" + _gallery(a["least_confident"], meta, test, m))
        mc = a.get("mc_dropout")
        if mc:
            out.append(
                f"<h3>{html.escape(m)}: most uncertain under MC dropout</h3>"
                f'<p class="note">{mc["passes"]} passes over {mc["examples"]} test examples; mean predictive entropy {mc["mean_entropy"]:.3f} nats.</p>'
                + _gallery(mc["most_uncertain"], meta, test, m)
            )
    if not any(a.get("mc_dropout") for a in classified.values()):
        out.append('<p class="note">No model has dropout, so there is no MC-dropout uncertainty; run with --dropout 0.2 to get it.</p>')
    return "".join(out)


def _gallery(examples: list[dict], meta, test, model: str) -> str:
    if meta.kind == "text":
        rows = []
        for e in examples:
            window = test.x[e["index"]]
            context = "".join(meta.class_names[int(i)] for i in window[-40:])
            top = ", ".join(f"{_visible(meta.class_names[k])} {p:.2f}" for k, p in e["top"])
            rows.append([context.replace("\n", "⏎"), _visible(meta.class_names[e["true"]]), top])
        return _table(["context (last 40 characters)", "true next", "predicted (probability)"], rows)
    if meta.kind == "table":  # rows as the file held them (decoded from the encoding)
        return _table_rows([e["index"] for e in examples], meta, test, [[_label(meta, e["true"]), f"{_label(meta, e['pred'])} ({e['confidence']:.2f})"] for e in examples], ["true", "predicted (probability)"])
    xs = [test.x[e["index"]].numpy() for e in examples]
    lengths = [None if test.lengths is None else int(test.lengths[e["index"]]) for e in examples]
    titles = [f"#{e['index']} true {_label(meta, e['true'])}\npred {_label(meta, e['pred'])} ({e['confidence']:.2f})" for e in examples]
    return _img(plots.example_gallery(meta.kind, xs, titles, lengths), f"{model}: least confident test examples")


def _table_rows(indexes: list[int], meta, test, extra: list[list[str]], extra_header: list[str]) -> str:
    """Test rows of a table as the file held them: the feature columns decoded, then `extra` cells."""
    from ..data.tables import decode_row

    features = meta.columns.get("features", [])
    rows = [[f"#{i}", *cells, *decode_row(features, test.x[i].numpy())] for i, cells in zip(indexes, extra)]
    return _table(["test row", *extra_header, *(f["name"] for f in features)], rows)


def _neurons(analyses: dict, dataset) -> str:
    meta, test = dataset.meta, dataset.test
    out = ['<p class="note">What the first layer of units responds to, on the first test example and over the test split.</p>']
    for m, a in analyses.items():
        n = a["neurons"]
        out.append(f"<h3>{html.escape(m)}</h3>")
        acts = n["example_activations"]
        if n["family"] == "recurrent":
            out.append(_img(plots.heatmap(acts.T[:64], "time step", "hidden unit", "hidden-unit activations over the first test example"), f"{m} hidden activations"))
            if "text" in n:
                out.append(_text_units(n["text"]))
        elif n["family"] == "convolutional":
            if n["weights"] is not None:
                out.append(_img(plots.filters(n["weights"], meta.kind, "first-layer filters"), f"{m} filters"))
            if acts.ndim == 2:
                out.append(_img(plots.heatmap(acts[:32], "position", "channel", "first-layer activation maps of the first test example", cmap="viridis"), f"{m} activation maps"))
            else:
                out.append(_img(plots.filters(acts, "image", "first-layer activation maps of the first test example"), f"{m} activation maps"))
        elif meta.kind == "table":
            if n["weights"] is not None:
                names = meta.columns.get("encoded", [])
                out.append(_img(plots.heatmap(n["weights"][:32].reshape(min(32, len(n["weights"])), -1), f"encoded feature ({', '.join(names[:3])}, ...)", "unit", "first-layer weights, one row per unit"), f"{m} weights"))
        else:
            if n["weights"] is not None and meta.task != "per_step":
                out.append(_img(plots.filters(n["weights"], meta.kind, "first-layer weights drawn in input space (one picture per unit)"), f"{m} weights in input space"))
            elif n["weights"] is not None:
                out.append(_img(plots.heatmap(n["weights"][:32], "input (character × window position)", "unit", "first-layer weights"), f"{m} weights"))
        if meta.kind == "table" and n["top_inputs"]:
            shown = [(t["unit"], i) for t in n["top_inputs"][:2] for i in t["inputs"][:3]]
            out.append('<p class="note">The test rows that activate two of its units most (the units that vary most between rows):</p>')
            out.append(_table_rows([i for _, i in shown], meta, test, [[str(u), _label(meta, int(test.y[i])) if meta.task == "classify" else "-"] for u, i in shown], ["unit", "class"]))
        elif meta.kind != "text" and n["top_inputs"]:
            shown = n["top_inputs"][:2]
            xs, titles, lengths = [], [], []
            for t in shown:
                for rank, i in enumerate(t["inputs"][:4]):
                    xs.append(test.x[i].numpy())
                    lengths.append(None if test.lengths is None else int(test.lengths[i]))
                    label = f" (class {_label(meta, int(test.y[i]))})" if meta.task == "classify" else ""
                    titles.append(f"unit {t['unit']}, #{rank + 1}{label}")
            out.append('<p class="note">The test inputs that activate two of its units most (the units that vary most between inputs):</p>')
            out.append(_img(plots.example_gallery(meta.kind, xs, titles, lengths), f"{m} most activating inputs"))
    return "".join(out)


def _text_units(text: dict) -> str:
    """Characters of a held-out passage coloured by one unit's activation (Karpathy et al. 2015)."""
    out = []
    for u in text["units"][:3]:
        act = np.asarray(u["activations"])
        lim = float(np.abs(act).max()) or 1.0
        spans = []
        for ch, v in zip(text["passage"], act):
            a = v / lim
            color = f"rgba(214,39,40,{a:.2f})" if a > 0 else f"rgba(31,119,180,{-a:.2f})"
            spans.append(f'<span style="background:{color}">{html.escape(ch)}</span>')
        out.append(f"<p>unit {u['unit']}: follows <b>{html.escape(u['feature'])}</b> (r = {u['r']:+.2f}); red positive, blue negative</p>")
        out.append('<div class="chars">' + "".join(spans) + "</div>")
    return "".join(out)


def _span(analyses: dict, meta, models: list[str], task: str) -> str:
    if not analyses:
        return ""
    note = ('<p class="note">Mean |d output / d input| per input position over 200 test examples, normalised; span = the fewest '
            "positions holding 90% of it; farthest = steps back to the farthest position above 1% of the peak. Luo et al. (2016) "
            "found effective fields of CNNs far smaller than their theoretical ones.</p>")
    from .overview import receptive_field_text, span_text

    table = _table(["model", "effective span (measured)", "receptive field (theory)"], [[m, span_text(a), receptive_field_text(m, a, task, a["config"])] for m, a in analyses.items()])
    if meta.kind == "table":  # no positions: the gradient share per encoded feature is a sensitivity ranking
        names = meta.columns.get("encoded", [])
        note = ('<p class="note">A table\'s columns have no order, so there is no span to speak of: instead, the share of '
                "mean |d output / d input| over 200 test examples per encoded feature, the ten largest per model.</p>")
        rows = []
        for m, a in analyses.items():
            profile = np.asarray(a["span_profile"], dtype=float).ravel()
            top = np.argsort(-profile, kind="stable")[:10]
            rows.append([m, ", ".join(f"{names[k] if k < len(names) else k} {100 * profile[k]:.0f}%" for k in top)])
        return note + _table(["model", "most influential encoded features (share of the input gradient)"], rows)
    if meta.kind == "image":
        pic = _img(plots.span_maps({m: a["span_profile"] for m, a in analyses.items()}), "gradient share per pixel")
    else:
        pic = _img(plots.span_profiles({m: a["span_profile"] for m, a in analyses.items()}, per_step=task == "per_step"), "gradient share per position")
    return note + table + pic


def _order(rows: list[dict], perm: dict) -> str:
    if not perm:
        return ('<p class="note">Not measured for this comparison. Run <code>nncompare compare DATA --order</code> to train every model '
                "again on the same data with its input positions shuffled by one fixed permutation. MNIST-1D published "
                "(Greydanus 2020): MLP 68 → 68, CNN 94 → 56, GRU 91 → 57.</p>")
    by = {r["model"]: r for r in rows}
    acc = rows[0]["score_name"] == "test accuracy"
    scale = 100 if acc else 1
    from .overview import order_text

    table = _table(["model", "in order → shuffled"], [[m, order_text(by[m], perm.get(m))] for m in by])
    pic = _img(plots.order_bars({m: scale * by[m]["score_mean"] for m in by if by[m].get("n_done")}, {m: scale * r["score_mean"] for m, r in perm.items() if r.get("n_done")}, "test accuracy %" if acc else rows[0]["score_name"]), "order sensitivity")
    return ('<p class="note">The same models retrained with the input positions shuffled by one fixed permutation (the same for '
            "train and test). MNIST-1D published (Greydanus 2020): MLP 68 → 68, CNN 94 → 56, GRU 91 → 57.</p>" + table + pic)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _markdown(title, say, header, res, ov, models, classified, analyses, spec, rows, perm, skipped) -> str:
    parts = [f"# {title}", "", say, "", _md_table(header, res), *[x for line in skipped for x in ("", line)], "", "## Overview", "", _md_table([""] + models, [[name] + [cells[m] for m in models] for name, cells in ov])]
    if classified:
        parts += ["", "## Calibration", "", _md_table(["model", "ECE", "test accuracy (seed analysed)"], [[m, f"{a['calibration']['ece']:.3f}", f"{100 * a['accuracy']:.1f}%"] for m, a in classified.items()])]
    if spec.get("tuning"):
        parts += ["", "## Search", "", _md_table(["setting", "value"], search_rows(spec))]
    parts += ["", f"Configuration: `{json.dumps({k: spec[k] for k in ('dataset', 'models', 'seeds') if k in spec})}`; full details in comparison.json.", ""]
    return "\n".join(parts)

"""The FF / CNN / RNN overview table, one column per architecture, every row measured, and the verdict."""

from __future__ import annotations

import math

from ..reference import reference_line, too_few_examples
from ..results import best_ensemble, format_score, seeds_text, test_set_reason, underfit

BASIC = {
    "mlp": "weighted sum of the whole input, then a nonlinearity, layer after layer",
    "cnn": "small filters slid over neighbouring positions; features averaged over the input",
    "tcn": "dilated causal filters over past positions, in residual blocks",
    "rnn": "one state updated step by step: h_t = tanh(W x_t + U h_{t-1})",
    "lstm": "a gated cell state: forget, input and output gates decide what to keep",
    "gru": "a gated state: reset and update gates mix old and new",
}
TIES = {
    "feed-forward": "none: a separate weight for every input position",
    "convolutional": "across positions: the same filter everywhere",
    "recurrent": "across time steps: the same cell at every step",
}


def _score(row: dict) -> str:
    """As the results table shows it (no spread for one seed), with a % sign for accuracy."""
    if not row.get("n_done"):
        return "failed"
    return format_score(row) + (" %" if row["score_name"] == "test accuracy" else "")


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= 0.9995 * scale:  # 999.6k prints as 1M, not 1e+03k
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def receptive_field_text(model: str, analysis: dict, task: str, config: dict) -> str:
    rf = analysis.get("receptive_field")
    family = config.get("family")
    if family == "recurrent":
        segment = config.get("model_args", {}).get("segment", 1)  # runs stored before segments read one step at a time
        return "every earlier step" + (f", {segment} steps per recurrent step" if segment > 1 else "")
    if family == "feed-forward":
        if task == "per_step":
            return f"a window of {config['model_args'].get('window')} positions"
        return "the whole input"
    axis = "pixels per side" if analysis.get("kind") == "image" else "steps"
    if rf is None:
        return "-"
    if task == "per_step" or (model == "tcn" and config.get("model_args", {}).get("readout", "last") == "last"):  # runs stored before readout read the last step
        return f"{rf} {axis}" + ("" if task == "per_step" else " (the last step's features)")
    averaged = config.get("model_args", {}).get("downsample", 1)  # a long series averaged down first (runs stored before: 1)
    first = f", the series averaged over every {averaged} steps first" if isinstance(averaged, int) and averaged > 1 else ""
    return f"{rf} {axis} per feature{first}, then averaged over the whole input"


def span_text(analysis: dict) -> str:
    s = analysis.get("span")
    if not s or not s.get("positions"):
        return "-"
    unit = {"image": "pixels", "table": "encoded features"}.get(analysis.get("kind"), "positions")
    text = f"{s['span']} of {s['positions']} {unit} hold 90%"
    if s.get("farthest") is not None and analysis.get("kind") != "table":  # "back" needs an order
        text += f"; reaches {s['farthest']} back"
    return text


def order_text(row: dict, permuted_row: dict | None) -> str:
    if permuted_row is None:
        return "not measured (compare --order)"
    if not permuted_row.get("n_done"):
        return "failed"
    if row["score_name"] == "test accuracy":
        a, b = 100 * row["score_mean"], 100 * permuted_row["score_mean"]
        return f"{a:.1f} → {b:.1f} % ({b - a:+.1f})"
    return f"{row['score_mean']:.4g} → {permuted_row['score_mean']:.4g}"


def overview_rows(rows: list[dict], analyses: dict, permuted_rows: dict, task: str) -> list[tuple[str, dict]]:
    """(row name, model -> cell text) in the recipe's order."""
    models = [r["model"] for r in rows]
    by = {r["model"]: r for r in rows}
    a = {m: analyses.get(m, {}) for m in models}
    cfg = {m: a[m].get("config", {"family": by[m]["family"], "model_args": {}}) for m in models}
    return [
        ("family", {m: by[m]["family"] for m in models}),
        ("basic computation", {m: BASIC.get(m, "-") for m in models}),
        ("weight ties", {m: TIES.get(by[m]["family"], "-") for m in models}),
        ("effective span (measured)", {m: span_text(a[m]) for m in models}),
        ("receptive field (theory)", {m: receptive_field_text(m, a[m], task, cfg[m]) for m in models}),
        ("order sensitivity", {m: "does not apply: a table's columns have no order" if a[m].get("kind") == "table" and m not in permuted_rows else order_text(by[m], permuted_rows.get(m)) for m in models}),
        (rows[0]["score_name"] if rows else "score", {m: _score(by[m]) for m in models}),
        ("parameters", {m: f"{by[m]['params']:,}" for m in models}),
        ("FLOPs per example", {m: _si(a[m]["flops"]) if "flops" in a[m] else "-" for m in models}),
        ("training time per run", {m: f"{by[m]['train_seconds']:.1f} s" if math.isfinite(by[m]["train_seconds"]) else "-" for m in models}),
        ("inference speed", {m: f"{by[m]['inference_per_second']:,.0f} /s" if math.isfinite(by[m]["inference_per_second"]) else "-" for m in models}),
    ]


def verdict(dataset: str, rows: list[dict], best: str | None, separation: dict | None, analyses: dict, permuted_rows: dict, tied: list[str] | None = None, reference: dict | None = None, protocol: str | None = None, search: str | None = None, target_scaling: dict | None = None, ensembles: dict | None = None) -> str:
    """A few sentences generated from the numbers: who wins, by how much, at what cost, and why.
    `target_scaling`: the standardisation of a regression file's targets (DatasetMeta), which turns
    the MSEs into RMSEs in the file's units. `ensembles`: each model's seeds predicting together
    (runs/ensemble.py)."""
    done = [r for r in rows if r.get("n_done")]
    if not done or best is None:
        return f"No model finished on {dataset}."
    acc = done[0]["score_name"] == "test accuracy"
    by = {r["model"]: r for r in done}
    win = by[best]

    def fmt(r):
        return f"{100 * r['score_mean']:.1f}%" if acc else f"{r['score_mean']:.4g}"

    score_name = "test accuracy" if acc else done[0]["score_name"]
    tied = [m for m in (tied or []) if m in by]
    if len(done) == 1 and len(rows) == 1:  # e.g. a table, which only the MLP reads: nothing to rank
        parts = [f"{best.upper()} is the only network compared on {dataset} ({fmt(win)} {score_name}, {seeds_text(win['n_done'])})."]
    elif len(tied) > 1:
        names = ", ".join(m.upper() for m in tied[:-1]) + f" and {tied[-1].upper()}"
        parts = [f"{names} tie for best on {dataset} ({fmt(win)} {score_name}, {seeds_text(win['n_done'])} each)."]
    else:
        parts = [f"{best.upper()} fits {dataset} best ({fmt(win)} {score_name}, {seeds_text(win['n_done'])})."]
    if separation and len(tied) <= 1:
        other = separation["second"] if separation["first"] == best else separation["first"]
        if separation.get("test_set_too_small"):
            examples = f"{separation['gap_examples']:.3g} of {separation['test_examples']} test examples"
            parts.append(f"{other.upper()} ({fmt(by[other])}) is not distinguishable from it at 95%: the gap is {examples}, and {test_set_reason(separation)}.")
        elif separation["distinguishable"]:
            parts.append(f"The runner-up, {other.upper()} ({fmt(by[other])}), is behind at the 95% level (Welch p = {separation['p_value']:.2g}).")
        else:
            parts.append(f"{other.upper()} ({fmt(by[other])}) is not distinguishable from it at 95% (Welch p = {separation['p_value']:.2g}); more seeds would tell.")
    if reference and reference["model"] != "trivial":
        line = reference_line(reference, win)
        parts.append(line[0].upper() + line[1:] + ".")
    if ensembles and best in ensembles:
        parts.append(ensemble_sentence(ensembles, best, reference, fmt))
    if target_scaling and not acc and done[0]["score_name"] == "test MSE":
        rmse = [f"{best.upper()} {target_scaling['std'] * math.sqrt(max(win['score_mean'], 0.0)):.4g}"]
        if reference and reference["model"] != "trivial" and reference.get("score_name") == "test MSE":
            rmse.append(f"the reference {target_scaling['std'] * math.sqrt(max(reference['score_mean'], 0.0)):.4g}")
        parts.append(f"In the file's units (targets standardised with std {target_scaling['std']:.4g}) the RMSE is {' and '.join(rmse)}.")
    cheapest = min(done, key=lambda r: r["train_seconds"] if math.isfinite(r["train_seconds"]) else math.inf)
    if cheapest["model"] != best and math.isfinite(cheapest["train_seconds"]) and cheapest["train_seconds"] > 0:
        ratio = win["train_seconds"] / cheapest["train_seconds"]
        if ratio >= 1.5:
            parts.append(f"It trains in {ratio:.1f}× the time of the fastest model, {cheapest['model'].upper()} ({fmt(cheapest)}).")
        else:
            parts.append(f"It trains about as fast as the fastest model, {cheapest['model'].upper()} ({ratio:.1f}× its time).")
    mlp = by.get("mlp")
    if mlp and best != "mlp" and acc:
        gap = 100 * (win["score_mean"] - mlp["score_mean"])
        examples = gap / 100 * separation["test_examples"] if separation and separation.get("test_examples") else None
        if gap > 0 and examples is not None and too_few_examples(examples):
            parts.append(f"The MLP, which ties no weights across positions, is {gap:.1f} points behind, {examples:.3g} of {separation['test_examples']} test examples: too few to say whether sharing weights across positions pays on this data.")
        elif gap > 0:
            parts.append(f"The MLP, which ties no weights across positions, is {gap:.1f} points behind: sharing weights across positions pays on this data.")
    top, low = underfit(done)
    if low:
        names = ", ".join(r["model"].upper() for r in low[:-1]) + (" and " if len(low) > 1 else "") + low[-1]["model"].upper()
        accs = " and ".join(f"{100 * r['train_acc_mean']:.1f}%" for r in low)
        one = len(low) == 1
        parts.append(
            f"{names} {'fits its' if one else 'fit their'} own training data far less than {top['model'].upper()} (training accuracy {accs} at the kept epochs, "
            f"against {100 * top['train_acc_mean']:.1f}%): {'its test score is' if one else 'their test scores are'} limited by fitting, not only by generalising, "
            f"and longer training or another learning rate may change {'it' if one else 'them'}."
        )
    if permuted_rows and acc:
        drops = {m: 100 * (permuted_rows[m]["score_mean"] - by[m]["score_mean"]) for m in by if m in permuted_rows and permuted_rows[m].get("n_done")}
        if drops:
            worst = min(drops, key=drops.get)
            text = f"Shuffling the input positions changes {worst.upper()} by {drops[worst]:+.1f} points"
            if "mlp" in drops and worst != "mlp":
                text += f" and the MLP by {drops['mlp']:+.1f}"
            if drops[worst] < -2 and worst != "mlp" and drops[worst] < drops.get("mlp", 0) - 2:
                parts.append(text + ": the order of the input carries information the weight-tied models rely on.")
            else:
                parts.append(text + ": no model here depends much on the order of its input.")
    if search:  # tune/budget: the settings were searched before the seeded runs
        parts.append(search)
    if protocol:  # the small-training-set rule of train/protocol.py chose to hold no validation split out
        parts.append(protocol.split(";")[0][0].upper() + protocol.split(";")[0][1:] + ".")
    span = analyses.get(best, {}).get("span")
    if span and span.get("positions"):
        unit = "encoded features" if analyses.get(best, {}).get("kind") == "table" else "positions"
        parts.append(f"{best.upper()} draws 90% of its input gradient from {span['span']} of {span['positions']} {unit}.")
    return " ".join(p for p in parts if p)


def ensemble_sentence(ensembles: dict, best: str, reference: dict | None, fmt) -> str:
    """What the best model's seeds give predicting together, the best ensemble when another model's,
    and how that stands against the reference."""
    mine = ensembles[best]
    acc = mine["score_name"] == "test accuracy"
    what = "class probabilities" if acc else "values"
    text = f"{best.upper()}'s {mine['seeds']} seeds predicting together (the mean of their {what}) score {fmt({'score_mean': mine['score']})}"
    top = best_ensemble(ensembles)
    if top != best:
        text += f"; the best seeds together are {top.upper()}'s, {fmt({'score_mean': ensembles[top]['score']})}"
    if reference and reference["model"] != "trivial" and reference.get("score_name") == mine["score_name"]:
        gain = ensembles[top]["score"] - reference["score_mean"]
        gain = gain if acc else -gain
        close = round(100 * abs(gain), 1) == 0 if acc else abs(gain) < 1e-12
        where = "level with" if close else "above" if gain > 0 else "below"
        text += f", {where} the reference's {fmt(reference)} at {ensembles[top]['seeds']}× one run's training"
        examples = abs(gain) * reference["test_examples"] if acc and not close and reference.get("test_examples") else None
        if examples is not None and too_few_examples(examples):
            text += f" ({examples:.3g} of {reference['test_examples']} test examples: too few to tell apart at 95%)"
    return text + "."

"""Results of a comparison: aggregation over seeds, statistics (95% CI of the mean, Welch's t-test
between the best two) and their formatting. The CLI, the Python API and the report read these; nothing
here trains or imports the grid."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .models import get_model_info
from .reference import MIN_GAP_EXAMPLES, reference_line, too_few_examples


@dataclass
class Comparison:
    """What `compare` returns: the aggregated rows (one per model), every run's metrics, the folder."""

    dataset: str
    rows: list[dict]
    runs: list[dict]
    folder: Path | None
    best: str | None  # the first of `tied` (the best model when there is no tie)
    wall_seconds: float
    config: dict = field(default_factory=dict)
    separation: dict | None = None  # the best two models compared at the 95% level (see `separation`)
    order: list[dict] | None = None  # with order=True: the rows of the runs on shuffled positions
    reference: dict | None = None  # the non-neural reference row (reference.py), not ranked among the models
    tied: list[str] = field(default_factory=list)  # every model with the best score as shown (a tie: more than one)
    report: tuple | None = None  # (report.html, report.md) when the report was written
    ensembles: dict = field(default_factory=dict)  # model -> its seeds predicting together (runs/ensemble.py)

    ROW_COLUMNS = ("model", "family", "params", "lr", "score_name", "score_mean", "score_std", "score_ci95", "n_runs", "n_done", "train_seconds", "epochs", "inference_per_second")

    def dataframe(self, runs: bool = False):
        """The table as a pandas DataFrame indexed by model (score_mean, score_std, score_ci95 are
        fractions for accuracy, as in summary.json); `runs=True`: one row per (model, seed) run."""
        import pandas as pd

        if runs:
            return pd.DataFrame(self.runs)
        return pd.DataFrame([{k: r.get(k) for k in self.ROW_COLUMNS} for r in self.rows], columns=list(self.ROW_COLUMNS)).set_index("model")

    @property
    def report_path(self) -> Path | None:
        """report.html of this comparison, when it was written (compare(..., report=True))."""
        return Path(self.report[0]) if self.report else None

    def table(self) -> str:
        """The comparison as plain text (the CLI draws the same rows with rich)."""
        heading = score_heading(self.rows[0]["score_name"]) + " (mean ± std)" if self.rows else ""
        header = f"{'model':6} {'params':>8} {'lr':>7} {heading:>23} {'95% CI':>16} {'train s':>8} {'infer/s':>10}"
        lines = [header]
        for r in self.rows:
            mark = ("  ← tied best" if len(self.tied) > 1 else "  ← best") if r["model"] in (self.tied or [self.best]) else ""
            lines.append(
                f"{r['model']:6} {r['params']:>8,} {r['lr']:>7g} {format_score(r):>23} {format_ci(r):>16} {r['train_seconds']:>8.1f} {r['inference_per_second']:>10,.0f}{mark}"
            )
        ref = self.reference
        if ref:
            lines.append(
                f"{ref['model']:6} {'-':>8} {'-':>7} {format_reference_score(ref):>23} {'-':>16} {ref['train_seconds']:>8.1f} {ref['inference_per_second']:>10,.0f}  (non-neural reference)"
            )
        if self.separation:
            lines.append(separation_line(self.separation, self.rows[0]["score_name"]))
        if ref:
            lines.append(reference_line(ref, next((r for r in self.rows if r["model"] == self.best), None)))
        if self.ensembles:
            lines.append(ensemble_line(self.ensembles))
        if fitting := underfit_line(self.rows):
            lines.append(fitting)
        return "\n".join(lines)


def score_heading(score_name: str) -> str:
    return "test acc %" if score_name == "test accuracy" else score_name


def format_score(row: dict) -> str:
    """"96.7 ± 0.4" (accuracy in percent) or "0.0012 ± 0.0003" (a loss), with failed runs counted."""
    diverged = row.get("n_diverged", 0)
    failed = row["n_runs"] - row["n_done"] - diverged
    if row["n_done"] == 0:
        return "diverged" if diverged and not failed else "failed"
    one = row["n_done"] == 1  # a single seed has no spread to show
    if row["score_name"] == "test accuracy":
        text = f"{100 * row['score_mean']:.1f}" + ("" if one else f" ± {100 * row['score_std']:.1f}")
    else:
        text = f"{row['score_mean']:.4g}" + ("" if one else f" ± {row['score_std']:.2g}")
    lost = [f"{k} {what}" for k, what in ((failed, "failed"), (diverged, "diverged")) if k]
    if lost:
        text += f" ({', '.join(lost)})"
    return text


def shown_score(row: dict) -> float:
    """The mean score as the table shows it: accuracy to 0.1 point, other scores to 4 significant digits."""
    if row["score_name"] == "test accuracy":
        return round(100 * row["score_mean"], 1)
    return float(f"{row['score_mean']:.4g}")


def best_models(rows: list[dict]) -> list[str]:
    """The models with the best mean score, as the table shows it (higher accuracy, lower loss); more
    than one when they tie, in the table's order. Empty when no model finished."""
    done = [r for r in rows if r["n_done"]]
    if not done:
        return []
    sign = 1 if done[0]["higher_is_better"] else -1
    top = max(sign * shown_score(r) for r in done)
    tied = [r for r in done if sign * shown_score(r) == top]
    return [r["model"] for r in sorted(tied, key=lambda r: -sign * r["score_mean"])]  # the exact best first


def seeds_text(n: int) -> str:
    """"one seed" or "mean of 3 seeds"."""
    return "one seed" if n == 1 else f"mean of {n} seeds"


def format_reference_score(ref: dict) -> str:
    """The reference's one score, as the table shows the networks' means."""
    return f"{100 * ref['score_mean']:.1f}" if ref["score_name"] == "test accuracy" else f"{ref['score_mean']:.4g}"


def format_ci(row: dict) -> str:
    """The 95% confidence interval of the mean score, "[95.1, 98.3]"; "-" with fewer than two seeds."""
    half = row.get("score_ci95", math.nan)
    if row["n_done"] < 2 or not math.isfinite(half):
        return "-"
    lo, hi = row["score_mean"] - half, row["score_mean"] + half
    if row["score_name"] == "test accuracy":  # an accuracy lies in [0, 100]%, whatever the t-interval says
        return f"[{100 * max(lo, 0.0):.1f}, {100 * min(hi, 1.0):.1f}]"
    # every other score (test MSE, bits/char, cross-entropy) is an error that is never below 0
    return f"[{max(lo, 0.0):.3g}, {hi:.3g}]"


# a model that fits its own training data this much (accuracy) below the best-fitting model is named:
# its test score is limited by fitting, which longer training or another rate may change, not only by
# how well what it fitted generalises
UNDERFIT_GAP = 0.10


def underfit(rows: list[dict]) -> tuple[dict | None, list[dict]]:
    """(the row that fits its training data best, the rows that fit theirs UNDERFIT_GAP or more below
    it), by the mean training accuracy of the kept epochs; (None, []) when there is none to compare."""
    fitted = [r for r in rows if r.get("n_done") and r["score_name"] == "test accuracy" and math.isfinite(r.get("train_acc_mean", math.nan))]
    if len(fitted) < 2:
        return None, []
    top = max(fitted, key=lambda r: r["train_acc_mean"])
    return top, [r for r in fitted if r["train_acc_mean"] <= top["train_acc_mean"] - UNDERFIT_GAP]


def underfit_line(rows: list[dict]) -> str:
    """One sentence naming the models that did not fit their own training data, or ""."""
    top, low = underfit(rows)
    if not low:
        return ""
    names = ", ".join(r["model"] for r in low)
    accs = ", ".join(f"{100 * r['train_acc_mean']:.1f}%" for r in low)
    verb, it, they = ("fits", "it", "it") if len(low) == 1 else ("fit", "them", "they")
    return (
        f"{names} {verb} the training data far less than {top['model']} (training accuracy {accs} at the kept epochs, "
        f"against {100 * top['train_acc_mean']:.1f}%): limited by fitting, not only by generalising; "
        f"longer training (--epochs) or another rate (--lr) may move {it}, and 'nncompare sanity' shows whether {they} can fit a batch at all"
    )


def separation_line(sep: dict | None, score_name: str) -> str:
    """One sentence: are the best two models told apart at the 95% level?"""
    if sep is None:
        return ""
    diff = abs(sep["difference"])
    gap = f"{100 * diff:.1f} points" if score_name == "test accuracy" else f"{diff:.3g}"
    apart = f"{gap} apart" + (f" ({sep['gap_examples']:.3g} of {sep['test_examples']} test examples)" if "gap_examples" in sep else "")
    head = f"{sep['first']} vs {sep['second']}: {apart}, Welch t-test p = {sep['p_value']:.2g}"
    if sep.get("test_set_too_small"):
        return f"{head} over seeds, but not distinguishable at 95%: {test_set_reason(sep)}"
    if sep["distinguishable"]:
        return f"{head}: distinguishable at 95%"
    return f"{head}: not distinguishable at 95%; more seeds (--seeds) would tell"


def test_set_reason(sep: dict) -> str:
    """Why a gap worth few test examples separates nothing, whatever the seeds say."""
    return (
        f"a gap of fewer than {MIN_GAP_EXAMPLES} test examples cannot be told apart on this test set by any test "
        "(McNemar's exact test at best); a larger test set could tell, more seeds could not"
    )


def aggregate(runs: list[dict], models: list[str], learning_rates: dict) -> list[dict]:
    """One row per model: the score (test accuracy, or test MSE for regression) as mean and sample std
    over the finished seeds, and the mean cost."""
    rows = []
    for m in models:
        mine = sorted((r for r in runs if r["model"] == m), key=lambda r: r["seed"])  # seed order, not finishing order
        done = [r for r in mine if r.get("status") == "done"]

        def mean(key):
            vals = [r[key] for r in done if r.get(key) is not None]
            return statistics.fmean(vals) if vals else math.nan

        scores = [r["score"] for r in done]
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        rows.append(
            {
                "model": m,
                "family": get_model_info(m).family,
                "lr": learning_rates[m],
                "n_runs": len(mine),
                "n_done": len(done),
                "n_diverged": sum(r.get("status") == "diverged" for r in mine),
                "params": next((r["params"] for r in mine if r.get("params")), 0),
                "score_name": next((r["score_name"] for r in done), "test accuracy"),
                "higher_is_better": next((r["higher_is_better"] for r in done), True),
                "score_mean": statistics.fmean(scores) if scores else math.nan,
                "score_std": std,
                "score_ci95": ci95_half_width(std, len(scores)),
                "scores": scores,
                "train_seconds": mean("train_seconds"),
                "train_acc_mean": mean("train_acc"),  # NaN for regression and for runs stored before it was recorded
                "epochs": mean("epochs"),
                "inference_per_second": mean("inference_per_second"),
                "context": next((r["context"] for r in done if "context" in r), None),  # text: characters seen per prediction
            }
        )
    return rows


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95% confidence interval of a mean of `n` seeds (Student's t); NaN below 2."""
    if n < 2:
        return math.nan
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n))


def separation(rows: list[dict], test_examples: int | None = None) -> dict | None:
    """Whether the best two models' scores over seeds differ at the 95% level (Welch's t-test, which
    does not assume equal spreads). None when fewer than two models have two finished seeds each.

    The seeds' spread says whether another training run would change the order on this test set; it
    says nothing of the test set's own size. With `test_examples` (classification, one label per
    input), a gap worth fewer than MIN_GAP_EXAMPLES test examples is not distinguishable however the
    seeds agree: no test of the two models on these examples could tell them apart at 95%
    ("test_set_too_small")."""
    ranked = [r for r in rows if r["n_done"] >= 2]
    if len(ranked) < 2:
        return None
    sign = 1 if ranked[0]["higher_is_better"] else -1
    first, second = sorted(ranked, key=lambda r: -sign * r["score_mean"])[:2]
    a, b = first["scores"], second["scores"]
    if statistics.stdev(a) == 0 and statistics.stdev(b) == 0:  # no spread: the t statistic is undefined
        p_value = 0.0 if first["score_mean"] != second["score_mean"] else 1.0
    else:
        import warnings

        from scipy.stats import ttest_ind

        with warnings.catch_warnings():  # identical scores in one group make scipy warn about precision
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(ttest_ind(a, b, equal_var=False).pvalue)
    difference = first["score_mean"] - second["score_mean"]
    out = {"first": first["model"], "second": second["model"], "difference": difference, "p_value": p_value}
    too_small = False
    if test_examples and first["score_name"] == "test accuracy":
        gap = abs(difference) * test_examples  # the seeds' mean gap, in test examples
        too_small = too_few_examples(gap)
        out.update(test_examples=test_examples, gap_examples=gap, test_set_too_small=too_small)
    out["distinguishable"] = p_value < 0.05 and not too_small
    return out


def best_ensemble(ensembles: dict) -> str | None:
    """The model whose seeds together score best (highest accuracy, lowest MSE)."""
    if not ensembles:
        return None
    acc = next(iter(ensembles.values()))["score_name"] == "test accuracy"
    return max(ensembles, key=lambda m: ensembles[m]["score"] if acc else -ensembles[m]["score"])


def ensemble_line(ensembles: dict) -> str:
    """One line for the table's foot: each model's seeds predicting together (runs/ensemble.py), and
    the best of them."""
    if not ensembles:
        return ""
    acc = next(iter(ensembles.values()))["score_name"] == "test accuracy"
    top = best_ensemble(ensembles)
    scores = ", ".join(f"{m.upper()} {format_ensemble(e)}" for m, e in ensembles.items())
    n = max(e["seeds"] for e in ensembles.values())
    what = "class probabilities" if acc else "values"
    return f"each model's {n} seeds predicting together (the mean of their {what}): {scores}; best {top.upper()} {format_ensemble(ensembles[top])}, for {ensembles[top]['seeds']}× one run's training"


def format_ensemble(e: dict) -> str:
    return f"{100 * e['score']:.1f}%" if e["score_name"] == "test accuracy" else f"{e['score']:.4g}"

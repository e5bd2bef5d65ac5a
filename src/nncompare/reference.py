"""The non-neural reference row of every comparison: is a neural network the right tool at all?

Fitted on the same data the networks learn from (train + validation: it has no epochs to choose) and
scored on the same test split, with the same score the table ranks the networks by:

- series, one label or value per series: MiniRocket (Dempster et al. 2021, aeon's
  `MiniRocketClassifier` / `MiniRocketRegressor`: random convolutional features and a ridge model).
  Multivariate series go in as they are; series of varying length as the loaders pad them (zeros after
  the real steps), which is how the networks see them too;
- images: logistic regression on the pixels (scikit-learn);
- tables: gradient boosting (scikit-learn's `HistGradientBoostingClassifier` / `Regressor`, the
  LightGBM-style learner, with native categorical columns and missing values), the strongest
  off-the-shelf learner on tabular data (Grinsztajn et al. 2022, "Why do tree-based models still
  outperform deep learning on tabular data?"); and, as a second row in the same dict under "also",
  a logistic (linear for regression) model on the same encoded columns the MLP reads;
- text and the synthetic tasks (adding, copy): the trivial predictor their loader defines (text: the
  training block's character frequencies; a task's own baseline), scored on the test split.

The reference is a row of the result, never a family: it is not tuned, has one seed, and is marked as
"non-neural" wherever it is shown.
"""

from __future__ import annotations

import math
import time

import numpy as np

MINIROCKET_MIN_LENGTH = 9  # MiniRocket's kernels span 9 steps; shorter series are padded with zeros


def reference_name(meta) -> str | None:
    """The reference a data set of this kind gets (None: none applies)."""
    if meta.baseline:  # a task that defines its own trivial predictor (the synthetic long-memory tasks, text)
        return "trivial"
    if meta.task == "per_step" or meta.kind == "text":
        return None
    if meta.kind == "series":
        return "minirocket"
    if meta.kind == "image" and meta.task == "classify":
        return "logistic"
    if meta.kind == "table" and meta.task in ("classify", "regress"):
        return "gradboost"
    return None


DESCRIPTIONS = {
    "minirocket": "MiniRocket (aeon; random convolutional features and a ridge classifier)",
    "logistic": "logistic regression on the pixels (scikit-learn)",
    "gradboost": "gradient boosting (scikit-learn HistGradientBoosting; native categorical columns and missing values)",
    "linear": "logistic regression on the encoded columns (scikit-learn; the MLP's inputs)",
    "linear-regress": "ridge regression on the encoded columns (scikit-learn; the MLP's inputs)",
    "minirocket-regress": "MiniRocket (aeon; random convolutional features and a ridge regressor)",
}


def fit_reference(dataset, seed: int = 0) -> dict | None:
    """Fit and score the reference of `dataset`: a row with the keys the table reads (model, family,
    score_name, score_mean, higher_is_better, train_seconds, inference_per_second), or None."""
    meta = dataset.meta
    name = reference_name(meta)
    if name is None:
        return None
    if name == "trivial":
        return _trivial_row(meta)
    if name == "gradboost":
        row = _fit_and_score(dataset, name, seed)
        row["also"] = [_fit_and_score(dataset, "linear", seed)]
        return row
    return _fit_and_score(dataset, name, seed)


def _fit_and_score(dataset, name: str, seed: int) -> dict:
    """Fit estimator `name` on train + validation and score it on the test split: one row."""
    meta = dataset.meta
    x_fit = np.concatenate([_features(dataset.train.x, meta, name), _features(dataset.val.x, meta, name)])
    y_fit = np.concatenate([dataset.train.y.numpy(), dataset.val.y.numpy()])
    x_test, y_test = _features(dataset.test.x, meta, name), dataset.test.y.numpy()
    if name == "minirocket":  # numba compiles MiniRocket's kernels on first use (tens of seconds): not its fitting time
        warm = np.concatenate([np.flatnonzero(y_fit == c)[:2] for c in np.unique(y_fit)]) if meta.task != "regress" else np.arange(min(len(y_fit), 8))
        _estimator(name, meta, seed).fit(x_fit[warm], y_fit[warm])
    model = _estimator(name, meta, seed)
    start = time.perf_counter()
    model.fit(x_fit, y_fit)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(x_test)
    predict_seconds = time.perf_counter() - start
    if meta.task == "regress":
        score_name, score, higher = "test MSE", float(np.mean((predicted.reshape(y_test.shape) - y_test) ** 2)), False
    else:
        score_name, score, higher = "test accuracy", float(np.mean(predicted == y_test)), True
    description = DESCRIPTIONS[f"{name}-regress" if f"{name}-regress" in DESCRIPTIONS and meta.task == "regress" else name]
    row = _row(name, description, score_name, score, higher, fit_seconds, len(x_test) / max(predict_seconds, 1e-9), len(x_fit))
    if meta.task == "classify":
        row["test_examples"] = len(y_test)  # what a gap to the networks is worth in examples (reference_line)
    return row


def _features(x, meta, name: str) -> np.ndarray:
    """Inputs in the layout the estimator takes: aeon's (N, channels, length); pixels flattened."""
    arr = x.numpy().astype(np.float32)
    if name == "logistic" or name == "linear":
        return arr.reshape(len(arr), -1)
    if name == "gradboost":  # one column per feature of the file: numbers with NaN gaps, category codes
        from .data.tables import native_columns

        return native_columns(meta.columns["features"], arr)[0]
    arr = arr.reshape(len(arr), arr.shape[1], -1).transpose(0, 2, 1)  # (N, L, C) -> (N, C, L)
    if arr.shape[2] < MINIROCKET_MIN_LENGTH:
        arr = np.pad(arr, ((0, 0), (0, 0), (0, MINIROCKET_MIN_LENGTH - arr.shape[2])))
    return np.ascontiguousarray(arr)


def _estimator(name: str, meta, seed: int):
    task = meta.task
    if name == "gradboost":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        categorical = [f["type"] == "categorical" for f in meta.columns["features"]]
        cls = HistGradientBoostingRegressor if meta.task == "regress" else HistGradientBoostingClassifier
        return cls(categorical_features=categorical if any(categorical) else None, random_state=seed)
    if name == "linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        # the encoded columns are standardised and one-hot already, as the MLP reads them
        return Ridge() if meta.task == "regress" else LogisticRegression(max_iter=1000, random_state=seed)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))
    if task == "regress":
        from aeon.regression.convolution_based import MiniRocketRegressor

        return MiniRocketRegressor(random_state=seed, n_jobs=1)
    from aeon.classification.convolution_based import MiniRocketClassifier

    return MiniRocketClassifier(random_state=seed, n_jobs=1)


def _trivial_row(meta) -> dict:
    b = meta.baseline
    score = b.get("measured", b.get("expected"))
    return _row("trivial", b["name"], b["score_name"], float(score), False, 0.0, float("nan"), None)


def _row(name, description, score_name, score, higher, fit_seconds, per_second, n_fit) -> dict:
    return {
        "model": name,
        "family": "non-neural",
        "description": description,
        "score_name": score_name,
        "score_mean": score,
        "higher_is_better": higher,
        "train_seconds": fit_seconds,
        "inference_per_second": per_second,
        "fitted_on": None if n_fit is None else f"train + validation ({n_fit} examples)",
    }


# McNemar's exact test of two classifiers on the same test examples (a sign test on the examples one
# gets right and the other wrong) has p = 2 * 0.5**k at best, when a gap of k examples is all one way:
# below this many examples no pairing of their predictions separates them at the 95% level. Used for
# the reference's gap here and the best two networks' in results.separation.
MIN_GAP_EXAMPLES = math.ceil(math.log2(2 / 0.05))  # 6 (p = 0.031; 5 give 0.0625)


def too_few_examples(examples: float) -> bool:
    """Whether a gap worth `examples` test examples (a mean over seeds, so possibly fractional) is
    below MIN_GAP_EXAMPLES; rounded so that 6 examples computed as 5.9999999 count as 6."""
    return round(examples, 6) < MIN_GAP_EXAMPLES


def reference_line(ref: dict, best: dict | None) -> str:
    """One sentence for the table's foot and the verdict: does the best network beat the reference,
    by how much, and at what cost in time."""
    acc = ref["score_name"] == "test accuracy"

    def fmt(v):
        return f"{100 * v:.1f}%" if acc else f"{v:.4g}"

    head = f"non-neural reference, {ref['description']}: {ref['score_name']} {fmt(ref['score_mean'])}"
    if ref["train_seconds"]:
        head += f" (fitted in {ref['train_seconds']:.1f} s)"
    if not best or not best.get("n_done"):
        return head
    gain = best["score_mean"] - ref["score_mean"]
    if not ref["higher_is_better"]:
        gain = -gain
    gap = f"{100 * abs(gain):.1f} points" if acc else f"{abs(gain):.3g}"
    if abs(gain) < 1e-12 or (acc and round(100 * abs(gain), 1) == 0):
        verdict = f"the best network, {best['model'].upper()}, ties it"
    elif gain > 0:
        verdict = f"the best network, {best['model'].upper()}, beats it by {gap}"
    elif ref["model"] == "gradboost":  # the talk's point about tabular data, said plainly
        verdict = f"gradient boosting wins: it beats the best network, {best['model'].upper()}, by {gap}"
        half = best.get("score_ci95", float("nan"))
        if best.get("n_done", 0) >= 2 and half == half and abs(gain) <= half:
            verdict += f", inside the {best['model'].upper()}'s 95% interval over seeds (±{fmt(half)}), so not a clear win"
    else:
        verdict = f"it beats the best network, {best['model'].upper()}, by {gap}"
    if acc and ref.get("test_examples") and not verdict.endswith("ties it"):
        examples = abs(gain) * ref["test_examples"]
        if too_few_examples(examples):
            verdict += f" ({examples:.3g} of {ref['test_examples']} test examples: too few to tell the two apart at 95%)"
    cost = ""
    if ref["train_seconds"] and best.get("train_seconds") and best["train_seconds"] == best["train_seconds"]:
        ratio = best["train_seconds"] / ref["train_seconds"]
        if ratio < 1:  # the network is the quicker one: say how much longer the reference takes
            cost = f"; the reference takes {1 / ratio:.2g}× as long to fit as one {best['model'].upper()} run"
        else:
            cost = f"; {best['model'].upper()} trains {ratio:.2g}× as long per run" if ratio < 10 else f"; {best['model'].upper()} trains {ratio:.0f}× as long per run"
    also = "".join(f"; second reference, {r['description']}: {r['score_name']} {fmt(r['score_mean'])}" for r in ref.get("also", []))
    return f"{head}; {verdict}{cost}{also}"

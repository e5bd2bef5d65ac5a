"""What a model got wrong and how sure it was: confusion matrix, calibration, least confident examples."""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Counts (rows: true class, columns: predicted) and the row-normalised matrix (each true class sums
    to 1; a class absent from `y_true` gives a row of zeros)."""
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(np.ravel(y_true), np.ravel(y_pred), labels=np.arange(n_classes))
    totals = counts.sum(1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    return {"counts": counts, "normalised": normalised}


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict:
    """Reliability diagram data and expected calibration error (Guo et al. 2017).

    Predictions are binned by their top-class probability into `bins` equal-width bins over [0, 1];
    ECE = sum_b (n_b / N) |accuracy_b - confidence_b|. Per-position outputs (N, T, K) count every
    position as one prediction.
    """
    probs = probs.reshape(-1, probs.shape[-1])
    y_true = np.ravel(y_true)
    confidence = probs.max(-1)
    correct = (probs.argmax(-1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # bin b holds (edge_b, edge_b+1]
    count = np.bincount(which, minlength=bins)
    acc = np.divide(np.bincount(which, weights=correct, minlength=bins), count, out=np.full(bins, np.nan), where=count > 0)
    conf = np.divide(np.bincount(which, weights=confidence, minlength=bins), count, out=np.full(bins, np.nan), where=count > 0)
    gaps = np.where(count > 0, np.abs(np.nan_to_num(acc) - np.nan_to_num(conf)), 0.0)
    return {"edges": edges, "count": count, "accuracy": acc, "confidence": conf, "ece": float((count * gaps).sum() / max(len(y_true), 1))}


def least_confident(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` examples whose top-class probability is lowest, least confident first."""
    top = probs.reshape(len(probs), -1, probs.shape[-1]).max(-1).mean(-1)  # per example (mean over positions)
    return np.argsort(top, kind="stable")[:k]


def most_uncertain(entropy: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` examples with the highest predictive entropy, most uncertain first."""
    return np.argsort(-entropy, kind="stable")[:k]

"""Metrics over bootstrap resamples, all resamples at once.

A resample is a row of weights (how often each held-out row was drawn), so every
metric becomes a function of weighted sums: ``W @ per_row_values`` gives one number
per resample. Candidate and baseline are scored on the *same* weights, which makes the
bootstrap paired. With weights of all ones the functions equal scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shipyard.checks.metrics import CLASS_COUNT_METRICS
from shipyard.checks.predictions import Predictions

__all__ = ["BOOTSTRAP_METRICS", "resample_weights", "weighted_metric"]

BOOTSTRAP_METRICS = {
    "binary": (*CLASS_COUNT_METRICS, "roc_auc", "log_loss", "brier_score"),
    "multiclass": (*CLASS_COUNT_METRICS, "log_loss", "brier_score"),
    "regression": ("mae", "mse", "rmse", "r2", "mape"),
}


def resample_weights(
    rows: int, resamples: int, rng: np.random.Generator, chunk: int = 200
) -> Iterator[np.ndarray]:
    """Weight matrices of up to ``chunk`` resamples each: row b counts how often each
    of ``rows`` rows was drawn (with replacement) in resample b."""
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        draws = rng.integers(0, rows, size=(size, rows))
        flat = (draws + (np.arange(size) * rows)[:, None]).ravel()
        yield np.bincount(flat, minlength=size * rows).reshape(size, rows).astype(np.float64)
        done += size


def _divide(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.broadcast(top, bottom).shape)
    np.divide(top, bottom, out=out, where=bottom != 0)
    return out


def _class_counts(p: Predictions, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    assert p.classes is not None
    truth = (p.truth[:, None] == p.classes[None, :]).astype(np.float64)
    predicted = (p.predicted[:, None] == p.classes[None, :]).astype(np.float64)
    hits = weights @ (truth * predicted)  # (resamples, classes)
    return hits, weights @ truth, weights @ predicted


def _counting(name: str, p: Predictions, weights: np.ndarray) -> np.ndarray:
    hits, support, chosen = _class_counts(p, weights)
    total = weights.sum(axis=1)
    if name == "accuracy":
        return hits.sum(axis=1) / total
    recall = _divide(hits, support)
    if name == "balanced_accuracy":
        present = support > 0
        return _divide((recall * present).sum(axis=1), present.sum(axis=1))
    base, _, average = name.partition("_")
    per_class = {
        "precision": _divide(hits, chosen),
        "recall": recall,
        "f1": _divide(2 * hits, support + chosen),
    }[base]
    if not average:
        average = "binary" if p.task == "binary" else "macro"
    if average == "binary":
        return per_class[:, -1]
    if average == "macro":
        return per_class.mean(axis=1)
    return _divide((per_class * support).sum(axis=1), support.sum(axis=1))


def _weighted_auc(p: Predictions, weights: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC with row weights; tied scores count one half."""
    assert p.score is not None
    order = np.argsort(p.score, kind="stable")
    score = p.score[order]
    positive = (p.truth[order] == p.positive).astype(np.float64)
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * positive, starts, axis=1)
    neg = np.add.reduceat(w * (1 - positive), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _divide(wins, pos.sum(axis=1) * neg.sum(axis=1))


def _row_losses(name: str, p: Predictions) -> np.ndarray:
    assert p.proba is not None and p.classes is not None
    onehot = (p.truth[:, None] == p.classes[None, :]).astype(np.float64)
    if name == "brier_score":
        if p.task == "binary":
            return (p.proba[:, -1] - onehot[:, -1]) ** 2
        return ((p.proba - onehot) ** 2).sum(axis=1)
    eps = np.finfo(np.float64).eps  # as scikit-learn's log_loss
    proba = np.clip(p.proba, eps, 1 - eps)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return -np.log((proba * onehot).sum(axis=1))


def _regression(name: str, p: Predictions, weights: np.ndarray) -> np.ndarray:
    error = p.predicted - p.truth
    total = weights.sum(axis=1)
    if name == "mae":
        return (weights @ np.abs(error)) / total
    if name == "mape":
        scale = np.maximum(np.abs(p.truth), np.finfo(np.float64).eps)
        return (weights @ (np.abs(error) / scale)) / total
    squared = weights @ error**2
    if name == "mse":
        return squared / total
    if name == "rmse":
        return np.sqrt(squared / total)
    spread = weights @ p.truth**2 - (weights @ p.truth) ** 2 / total
    return 1 - _divide(squared, spread)


def weighted_metric(name: str, p: Predictions, weights: np.ndarray) -> np.ndarray:
    """``name`` (one of BOOTSTRAP_METRICS[p.task]) for each row of ``weights``.

    Raises ValueError for a metric that needs probabilities the model did not give.
    """
    if p.task == "regression":
        return _regression(name, p, weights)
    if name in CLASS_COUNT_METRICS:
        return _counting(name, p, weights)
    if p.proba is None:
        raise ValueError(f"{name} needs predicted probabilities; the model has no predict_proba")
    if name == "roc_auc":
        return _weighted_auc(p, weights)
    losses = _row_losses(name, p)
    return (weights @ losses) / weights.sum(axis=1)

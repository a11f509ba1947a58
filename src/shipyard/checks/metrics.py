"""The model-metrics gate: quality numbers computed by Shipyard on the held-out set.

Classification: accuracy, balanced accuracy, precision/recall/F1 (binary for two
classes, macro for more; ``_macro`` and ``_weighted`` variants always), ROC AUC,
average precision, log loss, Brier score, expected calibration error, the confusion
matrix, ROC and precision-recall curves and a reliability (calibration) curve.
Regression: MAE, MSE, RMSE, R², MAPE, median absolute error, max error, and a sample
of residuals for the plots. Thresholds come from ``gates.metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from shipyard.checks.base import FAILED, PASSED, CheckContext, GateResult
from shipyard.checks.predictions import Predictions, predictions
from shipyard.core.thresholds import Threshold, parse_threshold
from shipyard.errors import ConfigError

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSION_METRICS",
    "canonical_metric",
    "compute_metrics",
    "metrics_gate",
    "primary_metric",
    "valid_metric_names",
]

# Metrics computed from the confusion counts alone (the bootstrap resamples these).
CLASS_COUNT_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
)
CLASSIFICATION_METRICS = (
    *CLASS_COUNT_METRICS,
    "roc_auc",
    "average_precision",
    "log_loss",
    "brier_score",
    "expected_calibration_error",
)
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "mape", "median_absolute_error", "max_error")
LOWER_IS_BETTER = frozenset(
    {"log_loss", "brier_score", "expected_calibration_error", *REGRESSION_METRICS} - {"r2"}
)
_ALIASES = {
    "auc": "roc_auc",
    "f1_binary": "f1",
    "precision_binary": "precision",
    "recall_binary": "recall",
    "brier": "brier_score",
    "pr_auc": "average_precision",
    "ece": "expected_calibration_error",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "mean_squared_error": "mse",
    "r_squared": "r2",
}
_CURVE_POINTS = 200
_RESIDUAL_SAMPLE = 1000


def valid_metric_names(task: str) -> tuple[str, ...]:
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def canonical_metric(name: str, task: str, *, where: str = "gates.metrics") -> str:
    """The metric's canonical name (``auc`` -> ``roc_auc``); ConfigError listing the
    valid names for this task when it is unknown."""
    canonical = _ALIASES.get(name.lower(), name.lower())
    valid = valid_metric_names(task)
    if canonical not in valid:
        kind = "a regression" if task == "regression" else f"a {task} classification"
        raise ConfigError(
            f"{where}: unknown metric {name!r} for {kind} model",
            hint=f"valid metrics: {', '.join(valid)} (aliases: auc, pr_auc, brier, ece)",
        )
    return canonical


def primary_metric(task: str) -> str:
    return {"binary": "f1", "multiclass": "f1_macro"}.get(task, "rmse")


def _downsample(*arrays: np.ndarray, points: int = _CURVE_POINTS) -> list[list[float]]:
    keep = np.unique(np.linspace(0, len(arrays[0]) - 1, min(points, len(arrays[0]))).astype(int))
    return [[round(float(v), 6) for v in a[keep]] for a in arrays]


def _calibration(truth01: np.ndarray, score: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability curve on equal-width bins, and the expected calibration error."""
    index = np.minimum((score * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    mean_score = np.bincount(index, weights=score, minlength=bins)
    positives = np.bincount(index, weights=truth01, minlength=bins)
    filled = counts > 0
    predicted = mean_score[filled] / counts[filled]
    observed = positives[filled] / counts[filled]
    ece = float(np.sum(counts[filled] * np.abs(predicted - observed)) / counts.sum())
    return {
        "mean_predicted": [round(float(v), 6) for v in predicted],
        "fraction_positive": [round(float(v), 6) for v in observed],
        "count": [int(c) for c in counts[filled]],
        "expected_calibration_error": ece,
    }


def _confidence_calibration(p: Predictions) -> dict[str, Any]:
    """For more than two classes: calibration of the top-class confidence."""
    assert p.proba is not None and p.classes is not None
    top = p.proba.argmax(axis=1)
    correct = (p.classes[top] == p.truth).astype(float)
    return _calibration(correct, p.proba.max(axis=1))


def _label_metrics(p: Predictions) -> dict[str, float]:
    from sklearn import metrics as skm

    average = "binary" if p.task == "binary" else "macro"
    extra = {"pos_label": p.positive} if p.task == "binary" else {}
    values = {
        "accuracy": skm.accuracy_score(p.truth, p.predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(p.truth, p.predicted),
    }
    for name, func in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        values[name] = func(p.truth, p.predicted, average=average, zero_division=0, **extra)
        for avg in ("macro", "weighted"):
            values[f"{name}_{avg}"] = func(p.truth, p.predicted, average=avg, zero_division=0)
    return {k: float(v) for k, v in values.items()}


def _score_metrics(p: Predictions) -> dict[str, float]:
    from sklearn import metrics as skm

    assert p.proba is not None and p.classes is not None
    truth = p.truth
    if p.task == "binary":
        positive = (truth == p.positive).astype(int)
        score = p.proba[:, -1]
        both = len(np.unique(positive)) == 2
        return {
            "roc_auc": float(skm.roc_auc_score(positive, score)) if both else math.nan,
            "average_precision": float(skm.average_precision_score(positive, score)),
            "log_loss": float(skm.log_loss(positive, score, labels=[0, 1])),
            "brier_score": float(np.mean((score - positive) ** 2)),
        }
    onehot = (truth[:, None] == p.classes[None, :]).astype(float)
    present = onehot.sum(axis=0) > 0
    auc = math.nan
    if present.all():
        auc = float(skm.roc_auc_score(truth, p.proba, multi_class="ovr", labels=p.classes))
    return {
        "roc_auc": auc,
        "average_precision": math.nan,
        "log_loss": float(skm.log_loss(truth, p.proba, labels=p.classes)),
        "brier_score": float(np.mean(np.sum((p.proba - onehot) ** 2, axis=1))),
    }


def _curves(p: Predictions) -> dict[str, Any]:
    from sklearn import metrics as skm

    assert p.score is not None
    positive = (p.truth == p.positive).astype(int)
    curves: dict[str, Any] = {}
    if len(np.unique(positive)) == 2:
        fpr, tpr, _ = skm.roc_curve(positive, p.score)
        precision, recall, _ = skm.precision_recall_curve(positive, p.score)
        curves["roc_curve"] = dict(zip(("fpr", "tpr"), _downsample(fpr, tpr), strict=True))
        curves["pr_curve"] = dict(
            zip(("recall", "precision"), _downsample(recall[::-1], precision[::-1]), strict=True)
        )
    return curves


def _confusion(p: Predictions) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    labels = list(p.classes) if p.classes is not None else sorted(set(p.truth))
    matrix = confusion_matrix(p.truth, p.predicted, labels=labels)
    return {"labels": [_plain(v) for v in labels], "matrix": matrix.astype(int).tolist()}


def _plain(value: Any) -> Any:
    """A numpy scalar as the matching Python value, for JSON."""
    return value.item() if hasattr(value, "item") else value


def _classification(p: Predictions) -> tuple[dict[str, float], dict[str, Any]]:
    values = _label_metrics(p)
    details: dict[str, Any] = {"confusion_matrix": _confusion(p)}
    if p.proba is None:
        for name in ("roc_auc", "average_precision", "log_loss", "brier_score"):
            values[name] = math.nan
        values["expected_calibration_error"] = math.nan
        return values, details
    values.update(_score_metrics(p))
    if p.task == "binary":
        positive = (p.truth == p.positive).astype(float)
        calibration = _calibration(positive, p.proba[:, -1])
        details.update(_curves(p))
    else:
        calibration = _confidence_calibration(p)
    values["expected_calibration_error"] = calibration.pop("expected_calibration_error")
    details["calibration"] = calibration
    return values, details


def _regression(p: Predictions, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    from sklearn import metrics as skm

    truth, predicted = p.truth, p.predicted
    mse = float(skm.mean_squared_error(truth, predicted))
    values = {
        "mae": float(skm.mean_absolute_error(truth, predicted)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": float(skm.r2_score(truth, predicted)),
        "mape": float(skm.mean_absolute_percentage_error(truth, predicted)),
        "median_absolute_error": float(skm.median_absolute_error(truth, predicted)),
        "max_error": float(np.max(np.abs(truth - predicted))),
    }
    residual = truth - predicted
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(truth), size=min(_RESIDUAL_SAMPLE, len(truth)), replace=False)
    counts, edges = np.histogram(residual, bins=30)
    details = {
        "residuals": {
            "predicted": [round(float(v), 6) for v in predicted[pick]],
            "residual": [round(float(v), 6) for v in residual[pick]],
            "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
        }
    }
    return values, details


def compute_metrics(p: Predictions, seed: int = 0) -> tuple[dict[str, float], dict[str, Any]]:
    """Every metric for the task, and the curves/tables behind the plots."""
    if p.task == "regression":
        return _regression(p, seed)
    return _classification(p)


def _judge(
    values: Mapping[str, float], thresholds: Mapping[str, Any], task: str
) -> list[dict[str, Any]]:
    rows = []
    for name, spec in thresholds.items():
        canonical = canonical_metric(name, task)
        threshold: Threshold = parse_threshold(spec)
        value = values[canonical]
        rows.append(
            {
                "metric": canonical,
                "value": value,
                "threshold": str(threshold),
                "passed": threshold.passes(value),
            }
        )
    return rows


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def metrics_gate(ctx: CheckContext, thresholds: Mapping[str, Any] | None) -> GateResult:
    """Compute the metrics on ``ctx.test`` and compare them with the thresholds."""
    p = predictions(ctx)
    values, details = compute_metrics(p, ctx.seed)
    judged = _judge(values, thresholds or {}, p.task)
    failed = [r for r in judged if not r["passed"]]
    numbers = {
        "task": p.task,
        "rows": len(p.truth),
        "metrics": values,
        "thresholds": {r["metric"]: r for r in judged},
        **details,
    }
    tables = {"metrics": [{"metric": k, "value": v} for k, v in values.items()]}
    if failed:
        missed = "; ".join(
            f"{r['metric']} = {_fmt(r['value'])} (needs {r['threshold']})" for r in failed
        )
        return GateResult(
            "metrics",
            FAILED,
            f"{len(failed)} of {len(judged)} metric target(s) missed: {missed}",
            numbers,
            tables,
            advice=_ADVICE,
        )
    shown = ", ".join(f"{r['metric']} = {_fmt(r['value'])}" for r in judged)
    summary = f"all {len(judged)} target(s) met: {shown}" if judged else "no targets set"
    return GateResult("metrics", PASSED, summary, numbers, tables)


_ADVICE = (
    "The candidate misses its quality targets on the held-out set. Look at the confusion "
    "matrix and the calibration curve in report.html, then improve the model (features, "
    "more data, tuning) and run the pipeline again. If a target itself is wrong, change "
    "gates.metrics in shipyard.yaml in a reviewed commit."
)

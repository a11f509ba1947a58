"""The fairness gate (fairlearn): how the candidate treats each group of a sensitive
attribute, and the parity differences and ratios the thresholds apply to.

Per attribute: a group table (count, selection rate, accuracy, precision, recall, F1,
true- and false-positive rate) and demographic parity, equalized odds and equal
opportunity as differences (largest gap between groups, 0 is parity) and ratios
(smallest over largest, 1 is parity). Binary classification only: the parity metrics
are defined on a positive decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from shipyard.checks.base import FAILED, PASSED, CheckContext, GateResult
from shipyard.checks.predictions import predictions, task_of
from shipyard.core.thresholds import parse_threshold
from shipyard.errors import ConfigError

__all__ = ["PARITY_METRICS", "SMALL_GROUP", "fairness_gate", "group_table", "parity", "validate"]

PARITY_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)
SMALL_GROUP = 30  # rows; estimates for smaller groups are noisy and flagged as such
MISSING_GROUP = "(missing)"


def validate(cfg: Any, columns: list[str], task: str) -> None:
    """ConfigError unless every sensitive attribute is a column and the task is binary."""
    absent = [name for name in cfg.sensitive if name not in columns]
    if absent:
        raise ConfigError(
            f"gates.fairness.sensitive: attribute(s) {absent} are not columns of the "
            f"held-out data (columns: {', '.join(columns)})",
            hint="name columns that exist in gates.data.test; a sensitive attribute need "
            "not be a model input, but it must be in the data",
        )
    if task != "binary":
        raise ConfigError(
            f"gates.fairness needs a binary classifier; this model's task is {task}",
            hint="remove gates.fairness, or evaluate fairness of a binary decision",
        )


def _groups(column: Any) -> np.ndarray:
    return column.astype(object).where(column.notna(), MISSING_GROUP).astype(str).to_numpy()


def compress(
    truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One row per distinct (group, truth, prediction) with its count as weight.

    Every metric here depends on the rows only through these counts, so fairlearn
    computes the same numbers from at most four rows per group, weighted, as from all
    rows; its per-row Python work would otherwise dominate on large held-out sets.
    """
    import pandas as pd

    frame = pd.DataFrame({"group": groups, "truth": truth, "predicted": predicted})
    counted = frame.groupby(["group", "truth", "predicted"], sort=True).size().reset_index()
    return (
        counted["truth"].to_numpy(),
        counted["predicted"].to_numpy(),
        counted["group"].to_numpy(),
        counted[0].to_numpy().astype(float),
    )


def _rate_metrics() -> dict[str, Any]:
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
        "precision": partial(precision_score, zero_division=0),
        "recall": partial(recall_score, zero_division=0),
        "f1": partial(f1_score, zero_division=0),
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
    }


def group_table(
    truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray
) -> list[dict[str, Any]]:
    """One row per group: count and the rates fairness is judged on (0/1 arrays in)."""
    from fairlearn.metrics import MetricFrame

    y, p, g, weight = compress(truth, predicted, groups)
    metrics = _rate_metrics()
    frame = MetricFrame(
        metrics=metrics,
        y_true=y,
        y_pred=p,
        sensitive_features=g,
        sample_params={name: {"sample_weight": weight} for name in metrics},
    )
    counts = {str(k): int(v) for k, v in zip(*np.unique(groups, return_counts=True), strict=True)}
    rows = []
    for group, values in frame.by_group.iterrows():
        row = {"group": str(group), "count": counts[str(group)]}
        row.update({k: float(v) for k, v in values.items()})
        row["small"] = row["count"] < SMALL_GROUP
        rows.append(row)
    return rows


def parity(truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """The six parity metrics, between groups (fairlearn's definitions)."""
    import fairlearn.metrics as fm

    y, p, g, weight = compress(truth, predicted, groups)
    return {
        name: float(getattr(fm, name)(y, p, sensitive_features=g, sample_weight=weight))
        for name in PARITY_METRICS
    }


def _attribute(ctx: CheckContext, attribute: str) -> tuple[dict[str, float], list[dict[str, Any]]]:
    p = predictions(ctx)
    truth = (p.truth == p.positive).astype(int)
    predicted = (p.predicted == p.positive).astype(int)
    groups = _groups(ctx.test[attribute])
    return parity(truth, predicted, groups), group_table(truth, predicted, groups)


def _judge(
    values: Mapping[str, Mapping[str, float]], thresholds: Mapping[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for attribute, metrics in values.items():
        for name, spec in thresholds.items():
            threshold = parse_threshold(spec)
            value = metrics[name]
            rows.append(
                {
                    "attribute": attribute,
                    "metric": name,
                    "value": value,
                    "threshold": str(threshold),
                    "passed": threshold.passes(value),
                }
            )
    return rows


def fairness_gate(ctx: CheckContext, cfg: Any) -> GateResult:
    """Judge ``cfg`` (a FairnessGate: sensitive columns + metric thresholds)."""
    validate(cfg, list(ctx.test.columns), task_of(ctx))
    thresholds = dict(cfg.model_extra or {})
    values: dict[str, dict[str, float]] = {}
    tables: dict[str, list[dict[str, Any]]] = {}
    for attribute in cfg.sensitive:
        values[attribute], tables[f"groups:{attribute}"] = _attribute(ctx, attribute)
    judged = _judge(values, thresholds)
    tables["thresholds"] = judged
    numbers = {"attributes": values, "thresholds": judged, "small_group": SMALL_GROUP}
    failed = [r for r in judged if not r["passed"]]
    if failed:
        detail = "; ".join(
            f"{r['metric']} for '{r['attribute']}' = {r['value']:.3g} (needs {r['threshold']})"
            for r in failed
        )
        return GateResult("fairness", FAILED, detail, numbers, tables, advice=_ADVICE)
    shown = ", ".join(f"{r['metric']}[{r['attribute']}] = {r['value']:.3g}" for r in judged)
    summary = shown or f"no thresholds set; group tables for {', '.join(cfg.sensitive)}"
    return GateResult("fairness", PASSED, summary, numbers, tables)


_ADVICE = (
    "The candidate treats the groups of a sensitive attribute too differently. Look at the "
    "group table in report.html (selection rate, TPR, FPR per group): check whether the "
    "attribute or a proxy of it is a model input, whether one group's labels or sample "
    "size differ in the training data, and consider reweighting or a fairness-aware "
    "method (e.g. fairlearn.reductions). Change the thresholds only with a documented "
    "reason."
)

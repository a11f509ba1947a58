"""The baseline gate: is the candidate worse than the version in production?

Both models predict the same held-out rows; a paired bootstrap (the same resampled
rows for both) gives, per metric, the distribution of ``regression`` — how much worse
the candidate is, oriented so that positive always means worse. The gate fails when,
with the configured confidence, the regression exceeds ``max_regression[metric]``:
the one-sided lower confidence bound of the regression is above the allowed amount.
A merely unlucky split therefore does not fail a candidate; a clear loss does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shipyard.checks.base import FAILED, PASSED, CheckContext, GateResult
from shipyard.checks.bootstrap import BOOTSTRAP_METRICS, resample_weights, weighted_metric
from shipyard.checks.metrics import LOWER_IS_BETTER, canonical_metric, primary_metric
from shipyard.checks.predictions import Predictions, predictions, task_of
from shipyard.errors import CheckFailed, ConfigError

__all__ = ["RESAMPLES", "baseline_gate", "compared_metrics", "paired_bootstrap"]

RESAMPLES = 1000


def compared_metrics(
    task: str, max_regression: Mapping[str, float], thresholds: Mapping[str, Any] = {}
) -> dict[str, float | None]:
    """Metric -> allowed regression (None: shown, not enforced).

    ``max_regression`` is enforced; the metrics with thresholds are shown beside them;
    with no ``max_regression`` the task's primary metric may not regress at all.
    """
    where = "gates.baseline.max_regression"
    enforced = {canonical_metric(k, task, where=where): float(v) for k, v in max_regression.items()}
    for name in enforced:
        if name not in BOOTSTRAP_METRICS[task]:
            raise ConfigError(
                f"{where}: {name!r} cannot be compared by bootstrap",
                hint=f"use one of: {', '.join(BOOTSTRAP_METRICS[task])}",
            )
    if not enforced:
        enforced = {primary_metric(task): 0.0}
    shown: dict[str, float | None] = dict(enforced)
    for name in thresholds:
        canonical = canonical_metric(name, task)
        if canonical in BOOTSTRAP_METRICS[task]:
            shown.setdefault(canonical, None)
    return shown


def paired_bootstrap(
    candidate: Predictions,
    baseline: Predictions,
    metrics: list[str],
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
) -> dict[str, np.ndarray]:
    """Per metric, the regression (positive = candidate worse) in each resample."""
    out: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for weights in resample_weights(len(candidate.truth), resamples, rng):
        for name in metrics:
            diff = weighted_metric(name, candidate, weights) - weighted_metric(
                name, baseline, weights
            )
            out[name].append(diff if name in LOWER_IS_BETTER else -diff)
    return {name: np.concatenate(parts) for name, parts in out.items()}


def _point(name: str, p: Predictions) -> float:
    return float(weighted_metric(name, p, np.ones((1, len(p.truth))))[0])


def _row(
    name: str,
    allowed: float | None,
    samples: np.ndarray,
    values: tuple[float, float],
    confidence: float,
) -> dict[str, Any]:
    candidate, baseline = values
    sign = 1 if name in LOWER_IS_BETTER else -1
    bound = float(np.quantile(samples, 1 - confidence))
    low, high = np.quantile(sign * samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {
        "metric": name,
        "candidate": candidate,
        "baseline": baseline,
        "difference": candidate - baseline,
        "ci_low": float(low),
        "ci_high": float(high),
        "regression": sign * (candidate - baseline),
        "regression_bound": bound,
        "max_regression": allowed,
        "enforced": allowed is not None,
        "passed": allowed is None or bound <= allowed,
    }


def _check_classes(candidate: Predictions, baseline: Predictions) -> None:
    ours = [] if candidate.classes is None else [str(c) for c in candidate.classes]
    theirs = [] if baseline.classes is None else [str(c) for c in baseline.classes]
    if ours != theirs:
        raise CheckFailed(
            f"the baseline predicts classes {theirs}, the candidate {ours}: "
            "they cannot be compared",
            hint="retrain one of them on the same label values",
        )


def baseline_gate(ctx: CheckContext, cfg: Any, thresholds: Mapping[str, Any] = {}) -> GateResult:
    """Compare the candidate with ``ctx.baseline`` (``cfg``: a BaselineGate)."""
    if ctx.baseline is None:
        reason = ctx.cache.get("baseline_missing", "no production version yet")
        return GateResult("baseline", PASSED, f"nothing to compare with: {reason}")
    task = task_of(ctx)
    shown = compared_metrics(task, cfg.max_regression, thresholds)
    candidate, baseline = predictions(ctx), predictions(ctx, "baseline")
    _check_classes(candidate, baseline)
    samples = paired_bootstrap(candidate, baseline, list(shown), np.random.default_rng(ctx.seed))
    rows = [
        _row(
            name,
            allowed,
            samples[name],
            (_point(name, candidate), _point(name, baseline)),
            cfg.confidence,
        )
        for name, allowed in shown.items()
    ]
    return _result(ctx, rows, cfg.confidence)


def _describe(row: dict[str, Any], confidence: float) -> str:
    return (
        f"{row['metric']} {row['candidate']:.4g} vs {row['baseline']:.4g}: worse by at "
        f"least {row['regression_bound']:.3g} with {confidence:.0%} confidence "
        f"(allowed {row['max_regression']:g})"
    )


def _result(ctx: CheckContext, rows: list[dict[str, Any]], confidence: float) -> GateResult:
    numbers = {
        "baseline": ctx.baseline_ref,
        "confidence": confidence,
        "resamples": RESAMPLES,
        "rows": len(ctx.test),
        "comparisons": {r["metric"]: r for r in rows},
    }
    tables = {"comparison": rows}
    failed = [r for r in rows if not r["passed"]]
    if failed:
        return GateResult(
            "baseline",
            FAILED,
            f"worse than {ctx.baseline_ref}: "
            + "; ".join(_describe(r, confidence) for r in failed),
            numbers,
            tables,
            advice=(
                f"The candidate is measurably worse than {ctx.baseline_ref} on the same "
                "held-out rows. Keep the current version; compare the two runs "
                "(`shipyard diff RUN_A RUN_B`) to find what changed in code, data or params. "
                "If the loss is a deliberate trade-off, raise gates.baseline.max_regression "
                "in a reviewed commit."
            ),
        )
    enforced = [r for r in rows if r["enforced"]]
    shown = ", ".join(f"{r['metric']} {r['difference']:+.3g}" for r in enforced)
    return GateResult(
        "baseline",
        PASSED,
        f"no significant regression vs {ctx.baseline_ref} ({shown})",
        numbers,
        tables,
    )

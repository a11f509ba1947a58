"""Canary analysis: compare the candidate with stable on the same window and decide.

The controller looks about once a second and calls :func:`analyse` with each arm's
traffic since the current step began. The answer is ``rollback`` as soon as harm is
both *statistically* significant and *practically* bigger than a tolerance — at any
look, before the step's minimum duration — ``promote`` only when the step has lasted
its minimum duration, both arms have ``min_requests``, and every check passed, and
``hold`` otherwise. Missing data never counts for the canary: a check that cannot be
computed blocks promotion, and after ``max_wait`` a step that still cannot be judged
is rolled back.

Many looks must not add up to a false rollback of a healthy canary. Counts (errors,
misclassifications, latency-bound exceedances) use always-valid mixture SPRTs
(``stats.count_excess_log_lr``), valid however often they are read as long as the
window grows from the step's start. Distribution tests (Mann–Whitney U, KS,
chi-square) use ``alpha`` split over the checks and over ``max_wait / look_interval``
looks (Bonferroni). So ``alpha`` bounds the chance that one step rolls back a canary
as good as stable.

A comparison with stable passes unless it shows, at the single-look level
``hold_alpha``, that the canary is worse than stable by more than the tolerance (a
non-inferiority test: Agresti–Caffo z for error and accuracy, Mann–Whitney against
stable's latencies times the tolerated ratio). A noisy estimate just over the
tolerance does not hold a healthy canary until ``max_wait``; a clear one does.
Latency and regression errors use the same shifted null for rollback, so a canary
slower by less than the tolerated ratio is never significantly "too slow". Absolute
bounds the user wrote (``error_rate``, ``p99_ms``) pass only when the observed value is
within them.

``deploy.analysis`` keys (all optional; thresholds are numbers or ``"<= x"``):

====================  =========  ======================================================
key                   default    meaning
====================  =========  ======================================================
min_requests          100        requests per arm in the step before it may promote
min_duration          step       time in the step before it may promote
max_wait              3 x step   give up (rollback) if still undecided; at least 60 s
look_interval         1s         how often the controller looks (alpha split)
alpha                 0.05       false-rollback budget per step for a healthy canary
hold_alpha            0.05       single-look level at which a comparison holds promotion
error_rate            none       absolute bound on the canary's error rate
max_error_increase    0.01       tolerated error-rate increase over stable (absolute)
p<q>_ms               none       absolute bound on the canary's q-th latency percentile
max_latency_ratio     1.25       tolerated canary/stable median latency ratio
prediction_shift      0.2        tolerated JS distance (labels) / KS statistic (numbers)
predictions           auto       ``labels``, ``numbers`` or ``auto`` (guess from values)
min_labels            50         labelled rows per arm before accuracy is judged; once
                                 stable has them, promotion waits for the canary's
require_feedback      false      hold (then roll back) until labels are in
accuracy_drop         0.02       tolerated accuracy drop (absolute)
f1_drop               none       tolerated macro-F1 drop (absolute)
max_mae_ratio         1.2        tolerated canary/stable mean absolute error (regression)
min_samples           20         latencies/predictions per arm before a test runs
====================  =========  ======================================================
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.stats import norm

from shipyard.rollout import stats
from shipyard.rollout.policy import CanaryPolicy, validate_analysis

__all__ = ["ArmWindow", "CanaryPolicy", "Verdict", "analyse", "validate_analysis"]


@dataclass
class ArmWindow:
    """One arm's traffic in the analysis window (since the step began)."""

    requests: int  # requests answered or failed
    errors: int  # requests that failed (model error -> 5xx)
    latencies_ms: np.ndarray  # per answered request
    predictions: np.ndarray  # per row; may be empty
    labels: np.ndarray | None = None  # ground truth of rows whose feedback arrived
    labelled_predictions: np.ndarray | None = None  # aligned with labels


# --- verdict --------------------------------------------------------------------------


def _plain(value: Any) -> float | None:
    """A JSON-safe float: None for missing, NaN or infinite values."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class Check:
    """One check's numbers; ``harm`` means rollback, ``passed`` None means no data."""

    name: str
    stable: float | None = None
    canary: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    passed: bool | None = None
    harm: bool = False
    blocking: bool = True  # does passed=None stop a promotion?
    reason: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stable": _plain(self.stable),
            "canary": _plain(self.canary),
            "statistic": _plain(self.statistic),
            "p_value": _plain(self.p_value),
            "threshold": _plain(self.threshold),
            "passed": self.passed,
            "harm": self.harm,
            "detail": self.detail,
        }


@dataclass
class Verdict:
    """What to do with the canary now, why, and the numbers behind it."""

    action: Literal["promote", "hold", "rollback"]
    reasons: list[str]
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "reasons": list(self.reasons), "checks": self.checks}


# --- checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Budget:
    """Per-check significance: ``sprt`` for always-valid tests, ``look`` for the rest."""

    sprt: float
    look: float
    hold: float

    @classmethod
    def of(cls, policy: CanaryPolicy) -> _Budget:
        per_check = policy.alpha / policy.check_count
        return cls(sprt=per_check, look=per_check / policy.looks, hold=policy.hold_alpha)


def _judge(
    check: Check,
    effect: float,
    tolerance: float,
    rollback_p: float,
    level: float,
    hold_p: float,
    budget: _Budget,
) -> None:
    """Harm needs an effect beyond the tolerance *and* a p-value below ``level``, one
    that survives every look; a promotion is held back by the same effect at the
    single-look level ``hold_alpha``. A NaN effect or p-value is "unknown", never a pass.
    """
    if math.isnan(effect) or math.isnan(rollback_p) or math.isnan(hold_p):
        check.passed, check.detail = None, "could not be computed (NaN)"
        return
    beyond = effect > tolerance
    check.harm = beyond and rollback_p <= level
    check.passed = not (beyond and hold_p <= budget.hold)


def _waiting(what: str, need: int, canary: int, stable: int) -> str:
    return f"waiting for {need} {what} per arm ({canary} canary, {stable} stable)"


def _p_text(p: float) -> str:
    return f"{p:.2g}"


def _error_check(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, budget: _Budget
) -> Check:
    check = Check("error_rate_increase", threshold=policy.max_error_increase)
    if canary.requests <= 0 or stable.requests <= 0:
        check.detail = "no traffic on the canary" if canary.requests <= 0 else "no stable traffic"
        return check
    rate_c, rate_s = canary.errors / canary.requests, stable.errors / stable.requests
    share = canary.requests / (canary.requests + stable.requests)
    log_lr = float(stats.count_excess_log_lr(canary.errors, stable.errors, share))
    increase = rate_c - rate_s
    check.stable, check.canary = rate_s, rate_c
    check.statistic = stats.two_proportion_z(
        canary.errors, canary.requests, stable.errors, stable.requests
    )
    check.p_value = min(1.0, math.exp(-log_lr))
    single = stats.excess_beyond_margin_p(
        canary.errors, canary.requests, stable.errors, stable.requests, policy.max_error_increase
    )
    tolerance = policy.max_error_increase
    _judge(check, increase, tolerance, check.p_value, budget.sprt, single, budget)
    check.reason = (
        f"error rate {rate_c:.1%} vs {rate_s:.1%} on stable ({increase * 100:+.1f} points, "
        f"{policy.max_error_increase * 100:.1f} allowed; two-proportion z={check.statistic:.1f}, "
        f"always-valid p={_p_text(check.p_value)})"
    )
    check.detail = (
        f"{canary.errors}/{canary.requests} canary, {stable.errors}/{stable.requests} stable"
    )
    return check


def _error_bound_check(canary: ArmWindow, bound: float, budget: _Budget) -> Check:
    check = Check("error_rate", threshold=bound)
    if canary.requests <= 0:
        check.detail = "no traffic on the canary"
        return check
    rate = canary.errors / canary.requests
    log_lr = float(stats.count_excess_log_lr(canary.errors, canary.requests - canary.errors, bound))
    check.canary, check.p_value = rate, min(1.0, math.exp(-log_lr))
    check.harm = check.p_value <= budget.sprt and rate > bound
    check.passed = rate <= bound and not check.harm
    check.reason = (
        f"canary error rate {rate:.1%} against the bound {bound:.1%} "
        f"({canary.errors}/{canary.requests}; always-valid p={_p_text(check.p_value)})"
    )
    return check


def _canary_latencies(canary: ArmWindow) -> tuple[np.ndarray, int]:
    """Canary latencies with missing (NaN) values counted as the slowest (+inf)."""
    values = np.asarray(canary.latencies_ms, dtype=np.float64)
    missing = ~np.isfinite(values)
    return np.where(missing, np.inf, values), int(missing.sum())


def _latency_check(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, budget: _Budget
) -> Check:
    check = Check("latency", threshold=policy.max_latency_ratio)
    slow, missing = _canary_latencies(canary)
    base = np.asarray(stable.latencies_ms, dtype=np.float64)
    base = base[np.isfinite(base)]
    if len(slow) < policy.min_samples or len(base) < policy.min_samples:
        check.detail = _waiting("latencies", policy.min_samples, len(slow), len(base))
        return check
    median_c, median_s = float(np.median(slow)), float(np.median(base))
    ratio = median_c / median_s if median_s > 0 else (1.0 if median_c <= 0 else math.inf)
    check.stable, check.canary = median_s, median_c
    # the null is "canary no slower than stable x tolerance": a slowdown within the
    # tolerance cannot become significant however many requests arrive
    check.statistic, check.p_value = stats.mann_whitney_greater(
        slow, base * policy.max_latency_ratio
    )
    tolerance = policy.max_latency_ratio
    _judge(check, ratio, tolerance, check.p_value, budget.look, check.p_value, budget)
    check.reason = (
        f"median latency {median_c:.1f} ms vs {median_s:.1f} ms on stable (x{ratio:.2f}, "
        f"x{tolerance:g} allowed; Mann-Whitney against stable x{tolerance:g}: "
        f"z={check.statistic:.1f}, p={_p_text(check.p_value)})"
    )
    check.detail = f"{missing} canary latencies missing, counted as slowest" if missing else ""
    return check


def _latency_bound_check(
    canary: ArmWindow, percentile: float, bound: float, policy: CanaryPolicy, budget: _Budget
) -> Check:
    check = Check(f"p{percentile:g}_ms", threshold=bound)
    slow, _ = _canary_latencies(canary)
    if len(slow) < policy.min_samples:
        check.detail = f"waiting for {policy.min_samples} canary latencies ({len(slow)})"
        return check
    over = int((slow > bound).sum())
    log_lr = float(stats.count_excess_log_lr(over, len(slow) - over, 1 - percentile / 100))
    observed = float(np.percentile(slow, percentile, method="higher"))
    check.canary, check.p_value = observed, min(1.0, math.exp(-log_lr))
    check.harm = check.p_value <= budget.sprt and observed > bound
    check.passed = observed <= bound and not check.harm
    check.reason = (
        f"canary p{percentile:g} latency {observed:.1f} ms against the bound {bound:g} ms "
        f"({over}/{len(slow)} slower; always-valid p={_p_text(check.p_value)})"
    )
    return check


def _prediction_kind(policy: CanaryPolicy, *arrays: np.ndarray) -> str:
    """Labels for text, booleans and a few whole numbers; numbers otherwise."""
    if policy.predictions != "auto":
        return policy.predictions
    values = np.concatenate([np.asarray(a).ravel() for a in arrays if a is not None and len(a)])
    if values.dtype.kind == "b":
        return "labels"
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        return "labels"
    finite = numbers[np.isfinite(numbers)]
    if finite.size and np.all(finite == np.round(finite)) and np.unique(finite).size <= 20:
        return "labels"
    return "numbers"


def _shift_check(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, budget: _Budget
) -> Check:
    check = Check("prediction_shift", threshold=policy.prediction_shift)
    ours, theirs = np.asarray(canary.predictions), np.asarray(stable.predictions)
    if len(ours) == 0 and len(theirs) == 0:
        check.blocking = False  # nothing logged on either arm: the gateway logs no predictions
        check.detail = "no predictions logged on either arm"
        return check
    if len(ours) < policy.min_samples or len(theirs) < policy.min_samples:
        check.detail = _waiting("predictions", policy.min_samples, len(ours), len(theirs))
        return check
    if _prediction_kind(policy, ours, theirs) == "labels":
        distance, p_value = stats.label_shift(ours, theirs)
        measure = "Jensen-Shannon distance"
    else:
        a, b = _numbers(ours), _numbers(theirs)
        b = b[np.isfinite(b)]
        if len(b) < policy.min_samples:
            check.detail = _waiting("finite predictions", policy.min_samples, len(a), len(b))
            return check
        missing = int((~np.isfinite(a)).sum())
        # a NaN the canary predicts is a prediction stable never makes: it shifts the
        # distribution (as +inf), so a model that answers NaN is judged, not ignored
        distance, p_value = stats.numeric_shift(np.where(np.isfinite(a), a, np.inf), b)
        measure = "KS statistic"
        check.detail = f"{missing} canary predictions not finite" if missing else ""
    check.statistic, check.p_value = distance, p_value
    tolerance = policy.prediction_shift
    _judge(check, distance, tolerance, p_value, budget.look, p_value, budget)
    check.reason = (
        f"prediction distribution shift {distance:.3f} ({measure}, "
        f"{policy.prediction_shift:g} allowed; p={_p_text(p_value)})"
    )
    return check


def _labelled(arm: ArmWindow) -> tuple[np.ndarray, np.ndarray]:
    if arm.labels is None or arm.labelled_predictions is None:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=object)
    return np.asarray(arm.labels), np.asarray(arm.labelled_predictions)


def _needs(policy: CanaryPolicy, stable_labels: np.ndarray) -> bool:
    """Labels block a promotion when required, or when they flow for stable: then the
    canary's are only late, and missing data must not count for the canary."""
    return policy.require_feedback or len(stable_labels) >= policy.min_labels


def _accuracy_check(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, budget: _Budget
) -> Check:
    (truth_c, pred_c), (truth_s, pred_s) = _labelled(canary), _labelled(stable)
    check = Check("accuracy", threshold=policy.accuracy_drop, blocking=_needs(policy, truth_s))
    if len(truth_c) < policy.min_labels or len(truth_s) < policy.min_labels:
        check.detail = _waiting("labels", policy.min_labels, len(truth_c), len(truth_s))
        return check
    wrong_c = int((truth_c.astype(str) != pred_c.astype(str)).sum())
    wrong_s = int((truth_s.astype(str) != pred_s.astype(str)).sum())
    acc_c, acc_s = 1 - wrong_c / len(truth_c), 1 - wrong_s / len(truth_s)
    share = len(truth_c) / (len(truth_c) + len(truth_s))
    log_lr = float(stats.count_excess_log_lr(wrong_c, wrong_s, share))
    drop = acc_s - acc_c
    check.stable, check.canary, check.statistic = acc_s, acc_c, drop
    check.p_value = min(1.0, math.exp(-log_lr))
    single = stats.excess_beyond_margin_p(
        wrong_c, len(truth_c), wrong_s, len(truth_s), policy.accuracy_drop
    )
    tolerance = policy.accuracy_drop
    _judge(check, drop, tolerance, check.p_value, budget.sprt, single, budget)
    check.reason = (
        f"accuracy {acc_c:.1%} vs {acc_s:.1%} on stable ({-drop * 100:+.1f} points, "
        f"-{policy.accuracy_drop * 100:.1f} allowed; always-valid p={_p_text(check.p_value)}; "
        f"{len(truth_c)} and {len(truth_s)} labels)"
    )
    return check


def _f1_check(stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, budget: _Budget) -> Check:
    assert policy.f1_drop is not None
    (truth_c, pred_c), (truth_s, pred_s) = _labelled(canary), _labelled(stable)
    check = Check("f1", threshold=policy.f1_drop, blocking=_needs(policy, truth_s))
    if len(truth_c) < policy.min_labels or len(truth_s) < policy.min_labels:
        check.detail = _waiting("labels", policy.min_labels, len(truth_c), len(truth_s))
        return check
    f1_c, se_c = stats.f1_jackknife(truth_c, pred_c)
    f1_s, se_s = stats.f1_jackknife(truth_s, pred_s)
    drop, spread = f1_s - f1_c, math.hypot(se_c, se_s)
    beyond = drop - policy.f1_drop
    z = beyond / spread if spread > 0 else (math.inf if beyond > 0 else 0.0)
    check.stable, check.canary, check.statistic = f1_s, f1_c, z
    check.p_value = float(norm.sf(z))
    _judge(check, drop, policy.f1_drop, check.p_value, budget.look, check.p_value, budget)
    check.reason = (
        f"macro F1 {f1_c:.3f} vs {f1_s:.3f} on stable ({-drop:+.3f}, -{policy.f1_drop:g} "
        f"allowed; jackknife z={z:.1f} beyond it, p={_p_text(check.p_value)})"
    )
    return check


def _mae_check(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, budget: _Budget
) -> Check:
    (truth_c, pred_c), (truth_s, pred_s) = _labelled(canary), _labelled(stable)
    check = Check(
        "mean_absolute_error", threshold=policy.max_mae_ratio, blocking=_needs(policy, truth_s)
    )
    if len(truth_c) < policy.min_labels or len(truth_s) < policy.min_labels:
        check.detail = _waiting("labels", policy.min_labels, len(truth_c), len(truth_s))
        return check
    errors_c = np.abs(_numbers(pred_c) - _numbers(truth_c))
    errors_c = np.where(np.isfinite(errors_c), errors_c, np.inf)  # unreadable: worst
    errors_s = np.abs(_numbers(pred_s) - _numbers(truth_s))
    errors_s = errors_s[np.isfinite(errors_s)]
    if len(errors_s) < policy.min_labels:
        check.detail = "stable's labels or predictions are not numbers"
        return check
    mae_c, mae_s = float(np.mean(errors_c)), float(np.mean(errors_s))
    ratio = mae_c / mae_s if mae_s > 0 else (1.0 if mae_c <= 0 else math.inf)
    check.stable, check.canary = mae_s, mae_c
    check.statistic, check.p_value = stats.mann_whitney_greater(
        errors_c, errors_s * policy.max_mae_ratio
    )
    tolerance = policy.max_mae_ratio
    _judge(check, ratio, tolerance, check.p_value, budget.look, check.p_value, budget)
    check.reason = (
        f"mean absolute error {mae_c:.4g} vs {mae_s:.4g} on stable (x{ratio:.2f}, "
        f"x{tolerance:g} allowed; Mann-Whitney against stable x{tolerance:g}: "
        f"p={_p_text(check.p_value)})"
    )
    return check


def _numbers(values: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(values).astype(np.float64)
    except (TypeError, ValueError):
        pass  # some are not numbers: convert one by one, those become NaN
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        with contextlib.suppress(TypeError, ValueError):
            out[i] = float(value)
    return out


def _checks(stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy) -> list[Check]:
    budget = _Budget.of(policy)
    checks = [_error_check(stable, canary, policy, budget)]
    if policy.error_rate is not None:
        checks.append(_error_bound_check(canary, policy.error_rate, budget))
    checks.append(_latency_check(stable, canary, policy, budget))
    for percentile, bound in policy.latency_bounds:
        checks.append(_latency_bound_check(canary, percentile, bound, policy, budget))
    checks.append(_shift_check(stable, canary, policy, budget))
    shown = [a for arm in (canary, stable) for a in (arm.predictions, _labelled(arm)[1])]
    if any(len(a) for a in shown) and _prediction_kind(policy, *shown) == "numbers":
        checks.append(_mae_check(stable, canary, policy, budget))
    else:
        checks.append(_accuracy_check(stable, canary, policy, budget))
        if policy.f1_drop is not None:
            checks.append(_f1_check(stable, canary, policy, budget))
    return checks


# --- decision -------------------------------------------------------------------------


def _missing(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, checks: list[Check]
) -> list[str]:
    """What the step still lacks before it can be judged (traffic, labels, samples)."""
    lacking = [
        f"{name} has {arm.requests}/{policy.min_requests} requests"
        for name, arm in (("canary", canary), ("stable", stable))
        if arm.requests < max(policy.min_requests, 1)
    ]
    lacking += [f"{c.name}: {c.detail}" for c in checks if c.passed is None and c.blocking]
    return lacking


def analyse(
    stable: ArmWindow, canary: ArmWindow, policy: CanaryPolicy, *, elapsed_s: float
) -> Verdict:
    """Compare the canary with stable over the step so far: promote, hold or rollback.

    Raises ValueError for an inconsistent window (errors above requests, negative
    counts); the controller treats that as a failed analysis and rolls back.
    """
    for name, arm in (("stable", stable), ("canary", canary)):
        if not 0 <= arm.errors <= arm.requests:
            raise ValueError(
                f"{name} window has {arm.errors} errors for {arm.requests} requests: "
                "need 0 <= errors <= requests"
            )
    checks = _checks(stable, canary, policy)
    table = [c.to_json() for c in checks]
    harmful = [c.reason for c in checks if c.harm]
    if harmful:
        return Verdict("rollback", harmful, table)
    lacking = _missing(stable, canary, policy, checks)
    outside = [c.reason for c in checks if c.passed is False]
    if not lacking and not outside and elapsed_s >= policy.duration_s:
        summary = (
            f"every check passed after {elapsed_s:.0f}s with {canary.requests} canary "
            f"and {stable.requests} stable requests"
        )
        return Verdict("promote", [summary], table)
    if elapsed_s >= policy.wait_s:
        if lacking:
            reasons = [
                f"not enough traffic/labels to judge after {policy.wait_s:g}s: "
                + "; ".join(lacking)
            ]
        else:
            reasons = [f"still outside its bounds after {policy.wait_s:g}s: {r}" for r in outside]
        return Verdict("rollback", reasons, table)
    waiting = (
        []
        if elapsed_s >= policy.duration_s
        else [f"step at {elapsed_s:.0f}s of {policy.duration_s:g}s"]
    )
    return Verdict(
        "hold", waiting + lacking + [f"outside its bounds so far: {r}" for r in outside], table
    )

"""A/B tests: sample size up front, a fixed-horizon test, and an always-valid one.

Two ways to read an experiment, because people watch dashboards:

* **Fixed horizon** — decide the sample size first (:func:`sample_size`), look once
  when it is reached: a z test for proportions, Welch's t test for means, with the lift
  ``B - A`` and its confidence interval, absolute and relative (delta method). Looked
  at every day, its false-positive rate climbs far above ``alpha``.
* **Sequential** — the normal-mixture SPRT (mSPRT) of ``stats.normal_mixture_log_lr``.
  Its likelihood ratio is a martingale under "no difference", so rejecting when it
  reaches ``1/alpha`` at *any* look keeps false winners at ``alpha`` or fewer however
  often the experiment is watched; inverting it gives an always-valid confidence
  interval for the lift. The price is a wider interval than the fixed one at the
  planned horizon. ``tau`` (the spread of effects the mixture expects) is best set to
  the minimum detectable effect; by default it is a tenth of the metric's standard
  deviation.

Arm summaries hold numpy values, so the same functions run vectorised over thousands
of simulated experiments in the tests. Errors in arguments raise ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from shipyard.rollout import stats

__all__ = [
    "ABResult",
    "ArmSummary",
    "FixedTest",
    "MetricResult",
    "SequentialTest",
    "analyse_experiment",
    "compare",
    "fixed_test",
    "sample_size",
    "sequential_ab",
    "sequential_test",
]

Kind = Literal["proportion", "mean"]
Decision = Literal["a", "b", "none yet"]
_LOWER_IS_BETTER = ("error", "latency", "loss", "mae", "rmse", "cost")


def sample_size(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    kind: Kind = "proportion",
    sd: float | None = None,
) -> int:
    """Observations per arm for a two-sided fixed-horizon test to detect ``mde``.

    ``mde`` is absolute (``0.02`` means 10 % -> 12 % for a proportion). Proportions::

        n = (z(1-α/2) sqrt(2 p̄ (1-p̄)) + z(power) sqrt(p1 (1-p1) + p2 (1-p2)))² / mde²

    with ``p1 = baseline``, ``p2 = baseline + mde``, ``p̄`` their mean. Means (``sd``
    the per-observation standard deviation)::

        n = 2 (z(1-α/2) + z(power))² sd² / mde²

    Raises ValueError for a baseline outside (0, 1), a zero effect, a missing ``sd``.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha!r} and {power!r}")
    if not math.isfinite(mde) or mde == 0:
        raise ValueError(f"mde (the minimum detectable effect) must be non-zero, got {mde!r}")
    z_alpha, z_power = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    if kind == "proportion":
        p1, p2 = baseline, baseline + mde
        if not (0 < p1 < 1 and 0 < p2 < 1):
            raise ValueError(
                f"baseline {baseline!r} and baseline + mde {p2!r} must be proportions in (0, 1)"
            )
        middle = (p1 + p2) / 2
        root = z_alpha * math.sqrt(2 * middle * (1 - middle)) + z_power * math.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2)
        )
        return math.ceil(root**2 / mde**2)
    if kind == "mean":
        if sd is None or not sd > 0:
            raise ValueError(f"kind='mean' needs sd, the standard deviation (> 0), got {sd!r}")
        return math.ceil(2 * (z_alpha + z_power) ** 2 * sd**2 / mde**2)
    raise ValueError(f"kind must be 'proportion' or 'mean', got {kind!r}")


@dataclass(frozen=True)
class ArmSummary:
    """Count, mean and variance (ddof=1) of one arm's metric; numbers or numpy arrays."""

    n: Any
    mean: Any
    variance: Any

    @classmethod
    def from_values(cls, values: Any) -> ArmSummary:
        array = np.asarray(values, dtype=np.float64)
        array = array[np.isfinite(array)]
        variance = float(array.var(ddof=1)) if len(array) > 1 else 0.0
        return cls(len(array), float(array.mean()) if len(array) else 0.0, variance)

    @classmethod
    def from_counts(cls, successes: Any, n: Any) -> ArmSummary:
        """A proportion: ``successes`` out of ``n`` (works on arrays of counts)."""
        n_arr = np.asarray(n, dtype=np.float64)
        rate = np.asarray(successes, dtype=np.float64) / np.maximum(n_arr, 1)
        return cls(n, rate, rate * (1 - rate) * n_arr / np.maximum(n_arr - 1, 1))


def _spread(a: ArmSummary, b: ArmSummary) -> Any:
    return np.sqrt(a.variance / np.maximum(a.n, 1) + b.variance / np.maximum(b.n, 1))


def _pooled_spread(a: ArmSummary, b: ArmSummary) -> Any:
    """Standard error of B - A under "no difference" for proportions."""
    n_a, n_b = np.maximum(a.n, 1), np.maximum(b.n, 1)
    pooled = (a.mean * n_a + b.mean * n_b) / (n_a + n_b)
    return np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))


@dataclass(frozen=True)
class FixedTest:
    """Fixed-horizon result of ``B - A``: z or Welch t, two-sided p, lift and interval."""

    statistic: Any
    p_value: Any
    lift: Any
    ci: tuple[Any, Any]


def fixed_test(a: ArmSummary, b: ArmSummary, *, kind: Kind, alpha: float = 0.05) -> FixedTest:
    """Two-sided test of ``B - A``: pooled z for proportions, Welch's t for means."""
    lift = np.asarray(b.mean, dtype=np.float64) - a.mean
    spread = _spread(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "proportion":
            statistic = np.where(_pooled_spread(a, b) > 0, lift / _pooled_spread(a, b), 0.0)
            p_value, critical = 2 * norm.sf(np.abs(statistic)), norm.ppf(1 - alpha / 2)
        else:
            statistic = np.where(spread > 0, lift / spread, 0.0)
            share_a = a.variance / np.maximum(a.n, 1)
            share_b = b.variance / np.maximum(b.n, 1)
            df = (share_a + share_b) ** 2 / (
                share_a**2 / np.maximum(a.n - 1, 1) + share_b**2 / np.maximum(b.n - 1, 1)
            )
            df = np.where(np.isfinite(df) & (df > 0), df, 1.0)
            p_value = 2 * student_t.sf(np.abs(statistic), df)
            critical = student_t.ppf(1 - alpha / 2, df)
    return FixedTest(statistic, p_value, lift, (lift - critical * spread, lift + critical * spread))


@dataclass(frozen=True)
class SequentialTest:
    """Always-valid result of ``B - A``: the mSPRT p-value and confidence interval."""

    p_value: Any  # always valid: P(ever <= alpha | no difference) <= alpha
    ci: tuple[Any, Any]  # always valid (1 - alpha) interval for B - A
    tau: Any


def sequential_test(
    a: ArmSummary, b: ArmSummary, *, kind: Kind, alpha: float = 0.05, tau: float | None = None
) -> SequentialTest:
    """mSPRT of ``B - A = 0`` with a ``N(0, tau²)`` mixture, and its interval."""
    lift = np.asarray(b.mean, dtype=np.float64) - a.mean
    null_spread = _pooled_spread(a, b) if kind == "proportion" else _spread(a, b)
    if tau is None:  # a tenth of the per-observation standard deviation
        n_a, n_b = np.maximum(a.n, 1), np.maximum(b.n, 1)
        if kind == "proportion":
            pooled = (a.mean * n_a + b.mean * n_b) / (n_a + n_b)
            pooled_var = pooled * (1 - pooled)
        else:
            pooled_var = (a.variance * n_a + b.variance * n_b) / (n_a + n_b)
        tau = 0.1 * np.sqrt(np.maximum(pooled_var, 1e-12))
    tau2 = np.asarray(tau, dtype=np.float64) ** 2
    log_lr = stats.normal_mixture_log_lr(lift, null_spread**2, tau2)
    p_value = np.minimum(1.0, np.exp(-log_lr))
    radius = stats.normal_mixture_radius(_spread(a, b) ** 2, tau2, alpha)
    return SequentialTest(p_value, (lift - radius, lift + radius), tau)


# --- results --------------------------------------------------------------------------


def _plain(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class MetricResult:
    """One metric's comparison of B (candidate) with A (control)."""

    metric: str
    kind: Kind
    higher_is_better: bool
    a: ArmSummary
    b: ArmSummary
    lift: float  # B - A
    ci: tuple[float, float]  # fixed-horizon (1 - alpha) interval of the lift
    relative_lift: float | None  # (B - A) / A
    relative_ci: tuple[float, float] | None
    p_value: float  # fixed-horizon, two-sided
    sequential_p: float  # always valid
    sequential_ci: tuple[float, float]
    sequential_relative_ci: tuple[float, float] | None
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        def pair(values: tuple[float, float] | None) -> list[float | None] | None:
            return None if values is None else [_plain(values[0]), _plain(values[1])]

        return {
            "metric": self.metric,
            "kind": self.kind,
            "higher_is_better": self.higher_is_better,
            "a": {"n": int(self.a.n), "mean": _plain(self.a.mean)},
            "b": {"n": int(self.b.n), "mean": _plain(self.b.mean)},
            "lift": _plain(self.lift),
            "ci": pair(self.ci),
            "relative_lift": None if self.relative_lift is None else _plain(self.relative_lift),
            "relative_ci": pair(self.relative_ci),
            "p_value": _plain(self.p_value),
            "sequential_p": _plain(self.sequential_p),
            "sequential_ci": pair(self.sequential_ci),
            "sequential_relative_ci": pair(self.sequential_relative_ci),
            "decision": self.decision,
        }


@dataclass
class ABResult:
    """An experiment's state: per-metric results and the decision on the primary one."""

    metrics: list[MetricResult]
    primary: str
    decision: Decision
    alpha: float
    reasons: list[str] = field(default_factory=list)

    def metric(self, name: str) -> MetricResult:
        return next(m for m in self.metrics if m.metric == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "primary": self.primary,
            "alpha": self.alpha,
            "reasons": list(self.reasons),
            "metrics": [m.to_json() for m in self.metrics],
        }


def _relative(a: ArmSummary, b: ArmSummary, z: float) -> tuple[float | None, Any]:
    """Relative lift (B - A) / A and its delta-method interval at ``z`` standard errors."""
    if not a.mean:
        return None, None
    ratio = b.mean / a.mean - 1
    variance = (
        b.variance / max(b.n, 1) / a.mean**2 + b.mean**2 * a.variance / max(a.n, 1) / a.mean**4
    )
    half = z * math.sqrt(variance)
    return float(ratio), (float(ratio - half), float(ratio + half))


def compare(
    metric: str,
    a: ArmSummary,
    b: ArmSummary,
    *,
    kind: Kind,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    tau: float | None = None,
    min_samples: int = 100,
) -> MetricResult:
    """Fixed and sequential comparison of one metric; a winner only by the sequential
    test, and only once both arms have ``min_samples``."""
    fixed = fixed_test(a, b, kind=kind, alpha=alpha)
    seq = sequential_test(a, b, kind=kind, alpha=alpha, tau=tau)
    relative, relative_ci = _relative(a, b, float(norm.ppf(1 - alpha / 2)))
    spread = float(_spread(a, b))
    seq_half = (float(seq.ci[1]) - float(seq.ci[0])) / 2
    _, seq_relative_ci = _relative(a, b, seq_half / spread if spread > 0 else math.inf)
    decision: Decision = "none yet"
    if min(a.n, b.n) >= min_samples and float(seq.p_value) <= alpha and float(fixed.lift) != 0:
        b_better = (float(fixed.lift) > 0) == higher_is_better
        decision = "b" if b_better else "a"
    return MetricResult(
        metric,
        kind,
        higher_is_better,
        a,
        b,
        float(fixed.lift),
        (float(fixed.ci[0]), float(fixed.ci[1])),
        relative,
        relative_ci,
        float(fixed.p_value),
        float(seq.p_value),
        (float(seq.ci[0]), float(seq.ci[1])),
        seq_relative_ci,
        decision,
    )


def _is_binary(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool(np.isin(finite, (0.0, 1.0)).all())


def analyse_experiment(
    samples: Mapping[str, tuple[Any, Any]],
    *,
    primary: str | None = None,
    alpha: float = 0.05,
    higher_is_better: Mapping[str, bool] | None = None,
    tau: Mapping[str, float] | None = None,
    min_samples: int = 100,
) -> ABResult:
    """Compare arms A and B on every metric of ``samples`` (name -> (a values, b values)).

    A metric whose values are all 0 or 1 is a proportion, otherwise a mean. Direction
    comes from ``higher_is_better``, else from the name (error, latency, loss, ... are
    better lower). The decision is the primary metric's (the first by default).
    """
    if not samples:
        raise ValueError("an A/B analysis needs at least one metric")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    primary = primary or next(iter(samples))
    if primary not in samples:
        raise ValueError(f"primary metric {primary!r} is not one of {sorted(samples)}")
    results = []
    for name, (values_a, values_b) in samples.items():
        a_arr = np.asarray(values_a, dtype=np.float64)
        b_arr = np.asarray(values_b, dtype=np.float64)
        kind: Kind = "proportion" if _is_binary(a_arr) and _is_binary(b_arr) else "mean"
        better = (higher_is_better or {}).get(
            name, not any(word in name.lower() for word in _LOWER_IS_BETTER)
        )
        results.append(
            compare(
                name,
                ArmSummary.from_values(a_arr),
                ArmSummary.from_values(b_arr),
                kind=kind,
                higher_is_better=better,
                alpha=alpha,
                tau=(tau or {}).get(name),
                min_samples=min_samples,
            )
        )
    main = next(r for r in results if r.metric == primary)
    return ABResult(results, primary, main.decision, alpha, [_reason(main, min_samples)])


def _reason(result: MetricResult, min_samples: int) -> str:
    numbers = (
        f"{result.metric}: B {float(result.b.mean):.4g} vs A {float(result.a.mean):.4g}, "
        f"lift {result.lift:+.4g} (always-valid CI {result.sequential_ci[0]:+.4g} .. "
        f"{result.sequential_ci[1]:+.4g}, p={result.sequential_p:.2g})"
    )
    if min(result.a.n, result.b.n) < min_samples:
        return f"{numbers}; waiting for {min_samples} observations per arm"
    if result.decision == "none yet":
        return f"{numbers}; no significant difference yet"
    return f"{numbers}; {result.decision.upper()} is better"


def sequential_ab(
    a: Any,
    b: Any,
    *,
    metric: str = "accuracy",
    alpha: float = 0.05,
    min_samples: int = 100,
    higher_is_better: bool | None = None,
    tau: float | None = None,
) -> ABResult:
    """One metric's per-observation values on arms A and B -> :class:`ABResult`."""
    return analyse_experiment(
        {metric: (a, b)},
        alpha=alpha,
        higher_is_better=None if higher_is_better is None else {metric: higher_is_better},
        tau=None if tau is None else {metric: tau},
        min_samples=min_samples,
    )

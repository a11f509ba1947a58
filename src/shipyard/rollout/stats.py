"""Statistical tests behind canary analysis and A/B tests: pure numpy/scipy, no I/O.

Two kinds of test live here, because a rollout is watched continuously:

* **Always-valid tests** (mixture sequential probability ratio tests). Their likelihood
  ratio is a non-negative (super)martingale under the null hypothesis, so by Ville's
  inequality the chance that it *ever* reaches ``1/alpha`` — however often it is looked
  at — is at most ``alpha``. They serve counts (errors, misclassifications, latency
  exceedances) and the A/B difference of means.
* **Classic tests** (Mann–Whitney U, Kolmogorov–Smirnov, chi-square, a jackknife z for
  F1). The caller splits its alpha over the looks it expects (Bonferroni), which is
  conservative because successive looks share most of their data.

Functions take plain numbers or arrays and return plain floats, so they are cheap to
call every second and to vectorise over thousands of simulated experiments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

__all__ = [
    "count_excess_log_lr",
    "excess_beyond_margin_p",
    "f1_jackknife",
    "js_distance",
    "label_shift",
    "mann_whitney_greater",
    "normal_mixture_log_lr",
    "normal_mixture_radius",
    "numeric_shift",
    "two_proportion_z",
]


def count_excess_log_lr(
    hits: np.ndarray | int, misses: np.ndarray | int, rate: np.ndarray | float
) -> np.ndarray:
    """Log mixture likelihood ratio that events happen more often than ``rate``.

    Each of ``hits + misses`` Bernoulli trials is a hit with unknown probability ``q``.
    Null: ``q <= rate``. Alternative: a uniform mixture of ``q`` over ``(rate, 1]``::

        LR = [∫_rate^1 q^h (1-q)^m dq / (1 - rate)] / [rate^h (1-rate)^m]

    For every ``q' > rate`` the factor ``(q'/rate)^x ((1-q')/(1-rate))^(1-x)`` has
    expectation ``<= 1`` when ``q <= rate``, so the mixture is a supermartingale and
    ``P(sup LR >= 1/alpha) <= alpha`` (Ville). Two uses:

    * canary vs stable: the trials are the *errors* of both arms, a hit when it fell on
      the canary; with equal error rates an error falls on the canary with probability
      equal to its traffic share, so ``rate`` is that share (a conditional test that
      needs no estimate of the common error rate, exact at small counts);
    * absolute bound: the trials are requests, a hit when it erred (or was slower than
      the bound), ``rate`` is the bound.
    """
    h = np.asarray(hits, dtype=np.float64)
    m = np.asarray(misses, dtype=np.float64)
    r = np.clip(np.asarray(rate, dtype=np.float64), 1e-300, 1 - 1e-16)
    with np.errstate(divide="ignore"):
        tail = np.log(special.betaincc(h + 1, m + 1, r))
    log_lr = special.betaln(h + 1, m + 1) + tail - np.log1p(-r) - h * np.log(r) - m * np.log1p(-r)
    return np.asarray(log_lr, dtype=np.float64)


def excess_beyond_margin_p(hits_a: int, n_a: int, hits_b: int, n_b: int, margin: float) -> float:
    """One-sided p-value that ``rate_a - rate_b > margin`` (a non-inferiority test).

    Wald z with the Agresti–Caffo adjustment (one hit and one miss added to each arm),
    which keeps its level at small counts and when either arm has no hits.
    """
    if n_a <= 0 or n_b <= 0:
        return 1.0
    p_a, p_b = (hits_a + 1) / (n_a + 2), (hits_b + 1) / (n_b + 2)
    spread = math.sqrt(p_a * (1 - p_a) / (n_a + 2) + p_b * (1 - p_b) / (n_b + 2))
    return float(special.ndtr(-(p_a - p_b - margin) / spread))


def two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """Pooled two-proportion z statistic of ``rate_a - rate_b`` (0 when undefined)."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 0.0
    return (hits_a / n_a - hits_b / n_b) / spread


def mann_whitney_greater(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(z, one-sided p) of Mann–Whitney U that ``x`` tends to be larger than ``y``.

    Normal approximation with tie and continuity corrections (as scipy's
    ``mannwhitneyu(method="asymptotic")``), from one sort: it runs at every look on
    tens of thousands of latencies. ``+inf`` ranks last, so a missing measurement
    recorded as infinity counts as the slowest. NaN is not allowed.
    """
    n_x, n_y = len(x), len(y)
    combined = np.concatenate([np.asarray(x, np.float64), np.asarray(y, np.float64)])
    n = len(combined)
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    starts = np.concatenate([[0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1])
    counts = np.diff(np.concatenate([starts, [n]]))
    ranks = np.repeat(starts + (counts + 1) / 2, counts)
    u = float(ranks[order < n_x].sum()) - n_x * (n_x + 1) / 2
    ties = float((counts.astype(np.float64) ** 3 - counts).sum())
    variance = n_x * n_y / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 0.0, 1.0
    z = (u - n_x * n_y / 2 - 0.5) / math.sqrt(variance)
    return z, float(special.ndtr(-z))


def js_distance(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two count vectors."""
    p = counts_a / counts_a.sum()
    q = counts_b / counts_b.sum()
    middle = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / middle), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / middle), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def label_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Jensen–Shannon distance, chi-square p-value) between two label samples."""
    classes_a, counts_a = np.unique(np.asarray(a).astype(str), return_counts=True)
    classes_b, counts_b = np.unique(np.asarray(b).astype(str), return_counts=True)
    classes = np.union1d(classes_a, classes_b)
    table = np.zeros((2, len(classes)))
    table[0, np.searchsorted(classes, classes_a)] = counts_a
    table[1, np.searchsorted(classes, classes_b)] = counts_b
    distance = js_distance(table[0], table[1])
    if len(classes) < 2:
        return distance, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return distance, float(result.pvalue)


def numeric_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Kolmogorov–Smirnov statistic, its p-value) between two numeric samples."""
    result = stats.ks_2samp(a, b, method="asymp")
    return float(result.statistic), float(result.pvalue)


def _macro_f1(pairs: dict[tuple[str, str], int], classes: list[str]) -> float:
    scores = []
    for c in classes:
        tp = pairs.get((c, c), 0)
        fp = sum(n for (t, p), n in pairs.items() if p == c and t != c)
        fn = sum(n for (t, p), n in pairs.items() if t == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    return float(np.mean(scores))


def f1_jackknife(
    truth: Sequence[object] | np.ndarray, predicted: Sequence[object] | np.ndarray
) -> tuple[float, float]:
    """(macro F1, its jackknife standard error).

    F1 depends only on the counts of (true, predicted) pairs, so the leave-one-out
    values are computed once per distinct pair, not once per row.
    """
    pairs: dict[tuple[str, str], int] = {}
    for t, p in zip(truth, predicted, strict=True):
        key = (str(t), str(p))
        pairs[key] = pairs.get(key, 0) + 1
    n = sum(pairs.values())
    classes = sorted({t for t, _ in pairs} | {p for _, p in pairs})
    full = _macro_f1(pairs, classes)
    if n < 2:
        return full, math.inf
    leave_out, weights = [], []
    for key, count in pairs.items():
        fewer = {**pairs, key: count - 1}
        leave_out.append(_macro_f1(fewer, classes))
        weights.append(count)
    values, w = np.asarray(leave_out), np.asarray(weights, dtype=np.float64)
    mean = float((values * w).sum() / n)
    variance = (n - 1) / n * float((w * (values - mean) ** 2).sum())
    return full, math.sqrt(variance)


def normal_mixture_log_lr(
    difference: np.ndarray | float, variance: np.ndarray | float, tau2: np.ndarray | float
) -> np.ndarray:
    """Log likelihood ratio of the normal-mixture SPRT (mSPRT) for "difference != 0".

    ``difference`` is the estimate, ``variance`` its variance (``s_a²/n_a + s_b²/n_b``);
    the mixture puts a ``N(0, tau2)`` prior on the true difference::

        Λ = sqrt(V / (V + τ²)) · exp(d² τ² / (2 V (V + τ²)))

    Under the null Λ is a martingale (asymptotically, with the variance estimated), so
    rejecting when ``Λ >= 1/alpha`` at any look keeps the false-positive rate <= alpha.
    """
    d = np.asarray(difference, dtype=np.float64)
    v = np.maximum(np.asarray(variance, dtype=np.float64), 1e-300)
    return 0.5 * np.log(v / (v + tau2)) + d * d * tau2 / (2 * v * (v + tau2))


def normal_mixture_radius(
    variance: np.ndarray | float, tau2: np.ndarray | float, alpha: float
) -> np.ndarray:
    """Half-width of the always-valid confidence interval that inverts the mSPRT:
    every difference ``θ`` with ``Λ(d - θ) < 1/alpha``."""
    v = np.maximum(np.asarray(variance, dtype=np.float64), 1e-300)
    return np.asarray(np.sqrt(v * (v + tau2) / tau2 * (np.log((v + tau2) / v) - 2 * np.log(alpha))))

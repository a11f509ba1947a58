"""The statistical building blocks: exact values, agreement with scipy and sklearn, and
calibration of the always-valid tests under continuous monitoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score

from shipyard.rollout import stats


def brute_force_log_lr(hits: int, misses: int, rate: float) -> float:
    mass, _ = integrate.quad(
        lambda q: q**hits * (1 - q) ** misses, rate, 1, epsabs=0, epsrel=1e-12, limit=200
    )
    null = rate**hits * (1 - rate) ** misses
    return math.log(mass / (1 - rate) / null)


@pytest.mark.parametrize(("hits", "misses", "rate"), [(0, 10, 0.05), (2, 0, 0.05), (5, 40, 0.2)])
def test_count_excess_matches_numerical_integration(hits, misses, rate):
    expected = brute_force_log_lr(hits, misses, rate)
    assert float(stats.count_excess_log_lr(hits, misses, rate)) == pytest.approx(expected, rel=1e-6)


def test_count_excess_without_hits_never_rejects():
    # no error on the canary: LR = 1 / (misses + 1) whatever the share
    assert math.exp(float(stats.count_excess_log_lr(0, 9, 0.3))) == pytest.approx(0.1)


@given(st.integers(0, 200), st.integers(0, 200), st.floats(0.01, 0.9, allow_nan=False))
def test_count_excess_grows_with_hits_and_shrinks_with_misses(hits, misses, rate):
    here = float(stats.count_excess_log_lr(hits, misses, rate))
    assert float(stats.count_excess_log_lr(hits + 1, misses, rate)) > here
    assert float(stats.count_excess_log_lr(hits, misses + 1, rate)) < here


@pytest.mark.parametrize("true_rate", [0.05, 0.03])
def test_count_excess_is_calibrated_when_watched_after_every_trial(true_rate):
    """2,000 sequences of 400 Bernoulli trials at (or below) the null rate 0.05, the
    likelihood ratio read after every trial: it reaches 1/alpha in at most alpha of
    them (Ville's inequality)."""
    rng = np.random.default_rng(11)
    hits = (rng.random((2000, 400)) < true_rate).cumsum(axis=1)
    misses = np.arange(1, 401) - hits
    log_lr = stats.count_excess_log_lr(hits, misses, 0.05)
    false_alarms = (log_lr >= math.log(1 / 0.05)).any(axis=1).mean()
    print(f"null rate 0.05, true rate {true_rate}: ever rejected in {false_alarms:.2%}")
    assert false_alarms <= 0.05


def test_count_excess_detects_a_real_excess():
    rng = np.random.default_rng(12)
    hits = (rng.random((500, 400)) < 0.15).cumsum(axis=1)
    log_lr = stats.count_excess_log_lr(hits, np.arange(1, 401) - hits, 0.05)
    assert (log_lr >= math.log(1 / 0.05)).any(axis=1).mean() > 0.95


def test_two_proportion_z_agrees_with_scipy():
    z = stats.two_proportion_z(12, 200, 30, 2000)
    chi2 = scipy_stats.chi2_contingency([[12, 188], [30, 1970]], correction=False)
    assert z**2 == pytest.approx(chi2.statistic) and z > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mann_whitney_matches_scipy_with_ties_and_infinities(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.integers(0, 8, 60).astype(float), [np.inf, np.inf]])
    y = rng.integers(0, 8, 300).astype(float)
    _, p = stats.mann_whitney_greater(x, y)
    expected = scipy_stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_mann_whitney_sees_a_slower_sample():
    rng = np.random.default_rng(3)
    z, p = stats.mann_whitney_greater(rng.normal(1, 1, 200), rng.normal(0, 1, 2000))
    assert z > 5 and p < 1e-6


def test_jensen_shannon_distance_bounds():
    assert stats.js_distance(np.array([5.0, 5.0]), np.array([1.0, 1.0])) == 0
    assert stats.js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_label_shift_sees_a_collapsed_classifier_and_not_noise():
    rng = np.random.default_rng(4)
    same_a, same_b = rng.integers(0, 3, 2000), rng.integers(0, 3, 300)
    distance, p = stats.label_shift(same_a, same_b)
    assert distance < 0.1 and p > 0.001
    distance, p = stats.label_shift(same_a, np.zeros(300, dtype=int))
    assert distance > 0.5 and p < 1e-10


def test_numeric_shift_is_the_ks_statistic():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 500), rng.normal(0.5, 1, 500)
    statistic, p = stats.numeric_shift(a, b)
    assert statistic == pytest.approx(scipy_stats.ks_2samp(a, b).statistic)
    assert p < 1e-6


def test_f1_and_its_jackknife_match_the_definition():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 3, 40).astype(str)
    predicted = np.where(rng.random(40) < 0.7, truth, rng.integers(0, 3, 40).astype(str))
    f1, se = stats.f1_jackknife(truth, predicted)
    assert f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    classes = sorted(set(truth) | set(predicted))
    leave_out = np.array(
        [
            f1_score(np.delete(truth, i), np.delete(predicted, i), average="macro", labels=classes)
            for i in range(40)
        ]
    )
    expected = math.sqrt(39 / 40 * ((leave_out - leave_out.mean()) ** 2).sum())
    assert se == pytest.approx(expected)


def test_normal_mixture_radius_inverts_the_likelihood_ratio():
    variance, tau2, alpha = 0.004, 0.01, 0.05
    radius = float(stats.normal_mixture_radius(variance, tau2, alpha))
    log_lr = float(stats.normal_mixture_log_lr(radius, variance, tau2))
    assert log_lr == pytest.approx(math.log(1 / alpha))
    assert float(stats.normal_mixture_log_lr(radius * 0.99, variance, tau2)) < log_lr


def test_margin_test_keeps_its_level_at_the_margin_and_finds_a_bigger_excess():
    rng = np.random.default_rng(13)
    n_a, n_b = 200, 2000
    p_values = np.array(
        [
            stats.excess_beyond_margin_p(
                int(rng.binomial(n_a, 0.03)), n_a, int(rng.binomial(n_b, 0.01)), n_b, 0.02
            )
            for _ in range(2000)
        ]
    )
    level = (p_values <= 0.05).mean()
    print(f"Agresti-Caffo margin test at the margin: {level:.1%} significant at 5 %")
    assert level <= 0.06
    assert stats.excess_beyond_margin_p(30, 200, 20, 2000, 0.02) < 0.01  # 15 % vs 1 %
    assert stats.excess_beyond_margin_p(0, 200, 0, 2000, 0.0) > 0.05  # no errors anywhere

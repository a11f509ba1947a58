"""A/B tests: sample sizes, the fixed-horizon test against scipy, and the sequential
test's calibration over 500 A/A experiments watched after every batch of 20."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from shipyard.rollout.abtest import (
    ArmSummary,
    analyse_experiment,
    fixed_test,
    sample_size,
    sequential_ab,
    sequential_test,
)

EXPERIMENTS, BATCH = 500, 20


def watched_proportions(rate_a: float, rate_b: float, looks: int, seed: int):
    """500 experiments as arrays: arm summaries after each batch of 20 per arm."""
    rng = np.random.default_rng(seed)
    n = BATCH * np.arange(1, looks + 1)
    hits_a = rng.binomial(BATCH, rate_a, (EXPERIMENTS, looks)).cumsum(axis=1)
    hits_b = rng.binomial(BATCH, rate_b, (EXPERIMENTS, looks)).cumsum(axis=1)
    return ArmSummary.from_counts(hits_a, n), ArmSummary.from_counts(hits_b, n)


def watched_means(shift: float, looks: int, seed: int):
    rng = np.random.default_rng(seed)
    n = BATCH * np.arange(1, looks + 1)

    def summary(mean: float) -> ArmSummary:
        batches = rng.normal(mean, 1.0, (EXPERIMENTS, looks, BATCH))
        total = batches.sum(axis=2).cumsum(axis=1)
        squares = (batches**2).sum(axis=2).cumsum(axis=1)
        average = total / n
        return ArmSummary(n, average, (squares - n * average**2) / (n - 1))

    return summary(0.0), summary(shift)


def ever_significant(p_values: np.ndarray, alpha: float = 0.05) -> float:
    return float((p_values <= alpha).any(axis=1).mean())


# --- sample size ----------------------------------------------------------------------


def test_sample_size_for_proportions_and_means():
    assert sample_size(0.10, 0.02) == 3841  # 10 % -> 12 %, alpha 0.05, power 0.8
    assert sample_size(0.5, mde=0.1, kind="mean", sd=1.0) == 1570  # 0.1 sd
    assert sample_size(0.10, 0.02, power=0.9) > 3841
    assert sample_size(0.10, -0.02) < sample_size(0.10, 0.02)  # 8 % is less noisy than 12 %


def test_the_planned_size_gives_the_planned_power():
    n = sample_size(0.10, 0.02)
    a, b = watched_proportions(0.10, 0.12, math.ceil(n / BATCH), seed=1)
    final = fixed_test(a, b, kind="proportion").p_value[:, -1]
    assert 0.74 <= (final <= 0.05).mean() <= 0.87


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": 1.2, "mde": 0.1}, "must be proportions"),
        ({"baseline": 0.1, "mde": 0}, "must be non-zero"),
        ({"baseline": 0.1, "mde": 0.1, "kind": "mean"}, "needs sd"),
        ({"baseline": 0.1, "mde": 0.1, "kind": "median"}, "kind must be"),
        ({"baseline": 0.1, "mde": 0.1, "power": 1}, "alpha and power"),
    ],
)
def test_sample_size_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_size(**kwargs)


# --- fixed horizon --------------------------------------------------------------------


def test_welch_matches_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 80), rng.normal(0.4, 2, 50)
    result = fixed_test(ArmSummary.from_values(a), ArmSummary.from_values(b), kind="mean")
    expected = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert float(result.statistic) == pytest.approx(expected.statistic)
    assert float(result.p_value) == pytest.approx(expected.pvalue)
    interval = expected.confidence_interval(0.95)
    assert (float(result.ci[0]), float(result.ci[1])) == pytest.approx(
        (interval.low, interval.high)
    )


def test_proportion_z_matches_the_chi_square_test():
    a, b = ArmSummary.from_counts(100, 1000), ArmSummary.from_counts(130, 1000)
    result = fixed_test(a, b, kind="proportion")
    chi2 = scipy_stats.chi2_contingency([[100, 900], [130, 870]], correction=False)
    assert float(result.p_value) == pytest.approx(chi2.pvalue)
    assert float(result.lift) == pytest.approx(0.03)


# --- sequential: the point of it ------------------------------------------------------


def test_a_a_proportions_watched_continuously_stay_within_alpha():
    """500 A/A experiments at 10 % conversion, looked at after every 20 observations
    per arm up to 5,000: the sequential test's false-winner rate is <= 5 %; the fixed
    test looked at the same way is far above it."""
    a, b = watched_proportions(0.10, 0.10, looks=250, seed=3)
    sequential = ever_significant(sequential_test(a, b, kind="proportion").p_value)
    naive = ever_significant(fixed_test(a, b, kind="proportion").p_value)
    print(f"A/A proportions, 250 looks: sequential FPR {sequential:.1%}, naive {naive:.1%}")
    assert sequential <= 0.05
    assert naive >= 0.2


def test_a_a_means_watched_continuously_stay_within_alpha():
    a, b = watched_means(0.0, looks=150, seed=4)
    sequential = ever_significant(sequential_test(a, b, kind="mean").p_value)
    naive = ever_significant(fixed_test(a, b, kind="mean").p_value)
    print(f"A/A means, 150 looks: sequential FPR {sequential:.1%}, naive {naive:.1%}")
    assert sequential <= 0.05
    assert naive >= 0.2


def test_the_sequential_test_finds_10_vs_12_percent():
    a, b = watched_proportions(0.10, 0.12, looks=500, seed=5)  # up to 10,000 per arm
    p_values = sequential_test(a, b, kind="proportion").p_value
    power = ever_significant(p_values)
    first = (p_values <= 0.05).argmax(axis=1)[(p_values <= 0.05).any(axis=1)]
    print(
        f"10% vs 12%: sequential power {power:.1%} by 10,000 per arm, "
        f"median {np.median(BATCH * (first + 1)):.0f} per arm at detection"
    )
    assert power >= 0.9


def test_the_sequential_test_finds_a_tenth_of_a_standard_deviation():
    a, b = watched_means(0.1, looks=200, seed=6)  # up to 4,000 per arm
    power = ever_significant(sequential_test(a, b, kind="mean").p_value)
    print(f"mean shift 0.1 sd: sequential power {power:.1%} by 4,000 per arm")
    assert power >= 0.8


def test_the_always_valid_interval_covers_the_truth_at_every_look():
    a, b = watched_proportions(0.10, 0.12, looks=250, seed=7)
    low, high = sequential_test(a, b, kind="proportion").ci
    covered = ((low <= 0.02) & (high >= 0.02))[:, 4:].all(axis=1).mean()  # from 100 per arm
    assert covered >= 0.95


# --- results --------------------------------------------------------------------------


def test_ab_result_reports_lift_intervals_and_a_winner():
    rng = np.random.default_rng(8)
    a = (rng.random(6000) < 0.10).astype(float)
    b = (rng.random(6000) < 0.13).astype(float)
    result = analyse_experiment(
        {"conversion": (a, b), "latency_ms": (rng.normal(20, 3, 6000), rng.normal(20, 3, 6000))}
    )
    conversion = result.metric("conversion")
    assert conversion.kind == "proportion" and result.decision == "b"
    assert conversion.sequential_p <= 0.05 and conversion.p_value < conversion.sequential_p
    assert conversion.ci[0] < conversion.lift < conversion.ci[1]
    seq_low, seq_high = conversion.sequential_ci
    assert seq_low < conversion.ci[0] and conversion.ci[1] < seq_high  # wider: always valid
    assert conversion.relative_ci[0] < 0.3 < conversion.relative_ci[1]
    assert result.metric("latency_ms").higher_is_better is False
    document = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert document["metrics"][0]["sequential_ci"] == pytest.approx(list(conversion.sequential_ci))


def test_lower_is_better_metrics_pick_the_arm_with_fewer_errors():
    rng = np.random.default_rng(9)
    a = (rng.random(5000) < 0.08).astype(float)
    b = (rng.random(5000) < 0.04).astype(float)
    assert sequential_ab(a, b, metric="error_rate").decision == "b"
    assert sequential_ab(b, a, metric="error_rate").decision == "a"


def test_no_winner_before_the_minimum_samples():
    result = sequential_ab(np.zeros(50), np.ones(50), metric="accuracy", min_samples=100)
    assert result.decision == "none yet"
    assert "waiting for 100" in result.reasons[0]


def test_analyse_experiment_refuses_an_unknown_primary_metric():
    with pytest.raises(ValueError, match="primary metric 'revenue'"):
        analyse_experiment({"conversion": ([0, 1], [1, 1])}, primary="revenue")


def test_arms_without_spread_still_compare():
    # every answer wrong on A and right on B: no within-arm variance, a clear winner
    assert sequential_ab(np.zeros(200), np.ones(200), metric="accuracy").decision == "b"
    result = sequential_ab(np.zeros(0), np.zeros(0), metric="accuracy")
    assert result.decision == "none yet"
    json.dumps(result.to_json(), allow_nan=False)

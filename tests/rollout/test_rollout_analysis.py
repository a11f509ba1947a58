"""Canary analysis: the four rollouts of issue #7 simulated look by look, fail-closed
cases, practical significance, and the ``deploy.analysis`` keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from shipyard.rollout import stats
from shipyard.rollout.analysis import (
    ArmWindow,
    CanaryPolicy,
    Verdict,
    analyse,
    validate_analysis,
)

RATE = 150  # requests/s over both arms, as in the end-to-end tests


@dataclass
class Arm:
    """One simulated arm: what it served so far, with each row's arrival second."""

    error_rate: float = 0.0
    slowdown: float = 1.0
    accuracy: float = 0.85
    regression_noise: float | None = None  # numbers instead of labels when set
    requests: int = 0
    errors: int = 0
    latencies: list[np.ndarray] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    predicted_text: list[np.ndarray] = field(default_factory=list)
    seconds: list[np.ndarray] = field(default_factory=list)

    def serve(self, rng: np.random.Generator, n: int, second: int) -> None:
        errors = int(rng.binomial(n, self.error_rate))
        answered = n - errors
        self.requests, self.errors = self.requests + n, self.errors + errors
        self.latencies.append(rng.lognormal(np.log(5.0 * self.slowdown), 0.3, answered))
        if self.regression_noise is None:
            predicted = (rng.random(answered) < 0.3).astype(int)
            right = rng.random(answered) < self.accuracy
            truth = np.where(right, predicted, 1 - predicted)
        else:
            truth = rng.normal(10, 3, answered)
            predicted = truth + rng.normal(0, self.regression_noise, answered)
        self.predictions.append(predicted)
        self.labels.append(truth.astype(str))
        self.predicted_text.append(predicted.astype(str))
        self.seconds.append(np.full(answered, second))

    def window(self, now: int, label_delay: float | None) -> ArmWindow:
        predictions = np.concatenate(self.predictions) if self.predictions else np.zeros(0)
        window = ArmWindow(
            self.requests,
            self.errors,
            np.concatenate(self.latencies) if self.latencies else np.zeros(0),
            predictions,
        )
        if label_delay is not None and self.labels:
            arrived = np.concatenate(self.seconds) <= now - label_delay
            window.labels = np.concatenate(self.labels)[arrived]
            window.labelled_predictions = np.concatenate(self.predicted_text)[arrived]
        return window


def run_step(
    seed: int,
    canary: Arm,
    *,
    share: float = 0.05,
    policy: CanaryPolicy | None = None,
    label_delay: float | None = 3.0,
    stop: bool = True,
) -> list[tuple[int, Verdict]]:
    """Looks once a second until a decision (or, with stop=False, until max_wait)."""
    policy = policy or CanaryPolicy.from_config({}, 5)
    rng = np.random.default_rng(seed)
    stable = Arm(regression_noise=canary.regression_noise and 1.0)
    looks = []
    for second in range(1, int(policy.wait_s) + 2):
        stable.serve(rng, int(rng.poisson(RATE * (1 - share))), second)
        canary.serve(rng, int(rng.poisson(RATE * share)), second)
        verdict = analyse(
            stable.window(second, label_delay),
            canary.window(second, label_delay),
            policy,
            elapsed_s=second,
        )
        looks.append((second, verdict))
        if stop and verdict.action != "hold":
            break
    return looks


def decision(looks: list[tuple[int, Verdict]]) -> tuple[int, Verdict]:
    return looks[-1]


# --- the four rollouts of the issue ---------------------------------------------------


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5])
def test_a_good_candidate_is_promoted_at_every_step(share):
    outcomes = [decision(run_step(seed, Arm(), share=share)) for seed in range(12)]
    assert [v.action for _, v in outcomes] == ["promote"] * 12
    assert all(second >= 5 for second, _ in outcomes)  # never before the step's duration


def test_a_candidate_erring_on_5_percent_is_rolled_back_at_the_first_step_quickly():
    outcomes = [decision(run_step(seed, Arm(error_rate=0.05))) for seed in range(20)]
    assert [v.action for _, v in outcomes] == ["rollback"] * 20
    assert all("error rate" in v.reasons[0] for _, v in outcomes)
    seconds = [s for s, _ in outcomes]
    print(f"5% errors at ~7.5 canary req/s: rollback after {np.mean(seconds):.1f} s on average")
    assert np.mean(seconds) <= 10 and max(seconds) <= 25


def test_a_candidate_three_times_slower_is_rolled_back_on_latency():
    outcomes = [decision(run_step(seed, Arm(slowdown=3.0))) for seed in range(10)]
    assert all(v.action == "rollback" for _, v in outcomes)
    assert all("latency" in v.reasons[0] for _, v in outcomes)
    assert max(s for s, _ in outcomes) <= 5


def test_a_less_accurate_candidate_is_rolled_back_once_labels_arrive():
    delay = 4.0
    outcomes = [
        decision(run_step(seed, Arm(accuracy=0.6), label_delay=delay)) for seed in range(10)
    ]
    assert all(v.action == "rollback" for _, v in outcomes)
    assert all("accuracy" in v.reasons[0] for _, v in outcomes)
    assert all(second > delay for second, _ in outcomes)  # not before any label arrived


def test_a_less_accurate_candidate_is_not_judged_without_labels():
    _, verdict = decision(run_step(0, Arm(accuracy=0.6), label_delay=None))
    assert verdict.action == "promote"  # feedback not required: accuracy cannot be known
    check = next(c for c in verdict.checks if c["name"] == "accuracy")
    assert check["passed"] is None


def test_a_healthy_canary_is_not_rolled_back_across_many_looks():
    """Every look up to max_wait, not stopping at promotion: the false-rollback rate
    per step must stay within alpha (0.05) although each step is looked at 40 times."""
    runs, policy = 20, CanaryPolicy.from_config({"max_wait": "40s"}, 5)
    harmed = sum(
        any(
            v.action == "rollback"
            for _, v in run_step(seed, Arm(), policy=policy, stop=False, label_delay=2)
        )
        for seed in range(runs)
    )
    print(f"healthy canary, {runs} steps x 40 looks: {harmed} false rollbacks")
    assert harmed / runs <= 0.05


# --- practical significance -----------------------------------------------------------


def test_a_two_percent_slower_candidate_with_huge_samples_is_promoted():
    rng = np.random.default_rng(7)
    base = rng.lognormal(np.log(5.0), 0.3, 200_000)
    slower = rng.lognormal(np.log(5.1), 0.3, 200_000)
    window = ArmWindow(200_000, 0, base, np.zeros(0))
    verdict = analyse(
        window, ArmWindow(200_000, 0, slower, np.zeros(0)), CanaryPolicy(), elapsed_s=600
    )
    _, p_value = stats.mann_whitney_greater(slower, base)
    assert p_value < 1e-10  # statistically significant ...
    assert verdict.action == "promote"  # ... but within the tolerated ratio
    latency = next(c for c in verdict.checks if c["name"] == "latency")
    assert latency["canary"] / latency["stable"] == pytest.approx(1.02, abs=0.01)


@pytest.mark.parametrize(("slowdown", "action"), [(1.2, "promote"), (1.4, "rollback")])
def test_latency_is_judged_against_the_tolerated_ratio_not_against_equality(slowdown, action):
    rng = np.random.default_rng(8)
    stable = ArmWindow(50_000, 0, rng.lognormal(np.log(5.0), 0.3, 50_000), np.zeros(0))
    slower = rng.lognormal(np.log(5.0 * slowdown), 0.3, 50_000)
    verdict = analyse(
        stable, ArmWindow(50_000, 0, slower, np.zeros(0)), CanaryPolicy(), elapsed_s=600
    )
    assert verdict.action == action


def test_a_clear_accuracy_drop_without_enough_evidence_to_roll_back_holds_then_rolls_back():
    truth = np.array(["1"] * 400)
    right = truth.copy()
    right[:60] = "0"
    stable = window(4000, labels=truth, labelled_predictions=right)  # 85 % right
    worse = np.array(["1"] * 70 + ["0"] * 30)
    canary = window(400, labels=truth[:100], labelled_predictions=worse)  # 70 % right
    policy = CanaryPolicy.from_config({"alpha": 1e-9}, 10)  # rollback needs overwhelming data
    assert analyse(stable, canary, policy, elapsed_s=20).action == "hold"
    verdict = analyse(stable, canary, policy, elapsed_s=60)
    assert verdict.action == "rollback"
    assert verdict.reasons[0].startswith("still outside its bounds after 60s: accuracy 70.0%")


def test_a_tiny_error_increase_with_huge_samples_is_promoted():
    latencies = np.full(1000, 5.0)
    stable = ArmWindow(1_000_000, 5_000, latencies, np.zeros(0))
    canary = ArmWindow(1_000_000, 7_000, latencies, np.zeros(0))  # +0.2 points, p ~ 1e-40
    verdict = analyse(stable, canary, CanaryPolicy(), elapsed_s=600)
    assert verdict.action == "promote"


# --- fail closed ----------------------------------------------------------------------


def window(requests: int, errors: int = 0, latency: float = 5.0, **extra) -> ArmWindow:
    answered = requests - errors
    predictions = np.tile([0, 1, 1], answered // 3 + 1)[:answered]
    return ArmWindow(requests, errors, np.full(answered, latency), predictions, **extra)


def test_no_canary_traffic_is_never_promoted_and_rolls_back_after_max_wait():
    policy = CanaryPolicy.from_config({"max_wait": "30s"}, 10)
    assert analyse(window(3000), window(0), policy, elapsed_s=20).action == "hold"
    verdict = analyse(window(3000), window(0), policy, elapsed_s=30)
    assert verdict.action == "rollback"
    assert "not enough traffic/labels to judge" in verdict.reasons[0]


def test_too_few_requests_holds_then_rolls_back():
    policy = CanaryPolicy.from_config({"min_requests": 500}, 10)
    assert analyse(window(9000), window(300), policy, elapsed_s=15).action == "hold"
    verdict = analyse(window(9000), window(450), policy, elapsed_s=60)
    assert verdict.action == "rollback"
    assert "canary has 450/500 requests" in verdict.reasons[0]


def test_required_feedback_that_never_arrives_rolls_back():
    policy = CanaryPolicy.from_config({"require_feedback": True}, 10)
    stable = window(3000, labels=np.array(["1"] * 100), labelled_predictions=np.array(["1"] * 100))
    canary = window(300)
    assert analyse(stable, canary, policy, elapsed_s=30).action == "hold"
    verdict = analyse(stable, canary, policy, elapsed_s=60)
    assert verdict.action == "rollback"
    assert "labels" in verdict.reasons[0]


def test_nan_latencies_count_against_the_canary():
    rng = np.random.default_rng(10)
    stable = ArmWindow(3000, 0, rng.lognormal(np.log(5), 0.3, 3000), np.zeros(0))
    latencies = rng.lognormal(np.log(5), 0.3, 300)
    latencies[::2] = np.nan
    canary = ArmWindow(300, 0, latencies, np.zeros(0))
    verdict = analyse(stable, canary, CanaryPolicy.from_config({}, 10), elapsed_s=30)
    assert verdict.action == "rollback"
    assert "latency" in verdict.reasons[0]
    latency = next(c for c in verdict.checks if c["name"] == "latency")
    assert "counted as slowest" in latency["detail"]


def test_a_canary_without_predictions_while_stable_has_them_is_not_promoted():
    canary = ArmWindow(300, 0, np.full(300, 5.0), np.zeros(0))
    verdict = analyse(window(3000), canary, CanaryPolicy.from_config({}, 10), elapsed_s=30)
    assert verdict.action == "hold"
    assert any("prediction_shift" in r for r in verdict.reasons)


def test_promotion_waits_for_the_step_duration():
    policy = CanaryPolicy.from_config({}, 10)
    assert analyse(window(3000), window(300), policy, elapsed_s=9).action == "hold"
    assert analyse(window(3000), window(300), policy, elapsed_s=10).action == "promote"


def test_harm_rolls_back_before_the_minimum_duration_and_requests():
    policy = CanaryPolicy.from_config({"min_requests": 500}, 300)
    verdict = analyse(window(600), window(30, errors=6), policy, elapsed_s=3)
    assert verdict.action == "rollback"


def test_an_inconsistent_window_is_an_error_not_a_verdict():
    with pytest.raises(ValueError, match="canary window has 12 errors for 10 requests"):
        analyse(
            window(3000), ArmWindow(10, 12, np.zeros(0), np.zeros(0)), CanaryPolicy(), elapsed_s=1
        )


def test_a_regressor_answering_nan_is_rolled_back_on_prediction_shift():
    rng = np.random.default_rng(9)
    stable = ArmWindow(3000, 0, np.full(3000, 5.0), rng.normal(10, 3, 3000))
    predictions = rng.normal(10, 3, 300)
    predictions[::3] = np.nan
    canary = ArmWindow(300, 0, np.full(300, 5.0), predictions)
    verdict = analyse(stable, canary, CanaryPolicy.from_config({}, 10), elapsed_s=3)
    assert verdict.action == "rollback"
    assert "KS statistic" in verdict.reasons[0]
    shift = next(c for c in verdict.checks if c["name"] == "prediction_shift")
    assert shift["detail"] == "100 canary predictions not finite"


def test_labels_flowing_for_stable_hold_a_canary_whose_labels_are_late():
    labels = np.array(["1", "0"] * 100)
    stable = window(3000, labels=labels, labelled_predictions=labels)
    verdict = analyse(stable, window(300), CanaryPolicy.from_config({}, 10), elapsed_s=20)
    assert verdict.action == "hold"
    assert any(
        "accuracy: waiting for 50 labels per arm (0 canary, 200 stable)" in r
        for r in verdict.reasons
    )


# --- other checks ---------------------------------------------------------------------


def test_absolute_p99_bound_rolls_back_a_canary_with_a_slow_tail():
    policy = CanaryPolicy.from_config({"p99_ms": "<= 50"}, 10)
    canary = window(400)
    canary.latencies_ms[:40] = 80.0  # 10 % of answers above 50 ms
    verdict = analyse(window(4000), canary, policy, elapsed_s=5)
    assert verdict.action == "rollback"
    assert any("p99 latency" in r for r in verdict.reasons)


def test_absolute_error_bound_holds_when_the_observed_rate_is_over_it():
    policy = CanaryPolicy.from_config({"error_rate": "<= 0.01", "max_error_increase": 1}, 10)
    verdict = analyse(window(4000, errors=40), window(400, errors=6), policy, elapsed_s=20)
    assert verdict.action == "hold"  # 1.5 % observed, not yet significantly above 1 %
    check = next(c for c in verdict.checks if c["name"] == "error_rate")
    assert check["passed"] is False and check["canary"] == pytest.approx(0.015)


def test_a_worse_regressor_is_rolled_back_on_mean_absolute_error():
    outcomes = [
        decision(run_step(seed, Arm(regression_noise=2.0), label_delay=2)) for seed in range(5)
    ]
    assert all(v.action == "rollback" for _, v in outcomes)
    assert all("mean absolute error" in v.reasons[0] for _, v in outcomes)


def test_a_collapsed_classifier_is_rolled_back_on_prediction_shift():
    stable = window(3000)
    canary = ArmWindow(300, 0, np.full(300, 5.0), np.zeros(300, dtype=int))  # always 0
    verdict = analyse(stable, canary, CanaryPolicy.from_config({}, 10), elapsed_s=3)
    assert verdict.action == "rollback"
    assert "Jensen-Shannon" in verdict.reasons[0]


def test_the_verdict_is_plain_json():
    canary = window(300)
    canary.latencies_ms[0] = np.nan
    verdict = analyse(window(3000), canary, CanaryPolicy.from_config({}, 10), elapsed_s=30)
    document = json.loads(json.dumps(verdict.to_json(), allow_nan=False))
    assert document["action"] == verdict.action
    keys = {"name", "stable", "canary", "statistic", "p_value", "threshold", "passed", "detail"}
    assert all(keys <= set(check) for check in document["checks"])


# --- configuration --------------------------------------------------------------------


def test_the_example_projects_analysis_is_accepted():
    analysis = {"error_rate": "<= 0.01", "p99_ms": "<= 50", "min_requests": 500}
    validate_analysis(analysis)
    policy = CanaryPolicy.from_config(analysis, 300)
    assert policy.error_rate == 0.01
    assert policy.latency_bounds == ((99.0, 50.0),)
    assert policy.min_requests == 500
    assert policy.wait_s == 900


def test_defaults_and_durations():
    policy = CanaryPolicy.from_config({}, 5)
    assert policy.wait_s == 60  # 3 x step, but at least a minute
    assert policy.looks == 60
    policy = CanaryPolicy.from_config({"max_wait": "2m", "look_interval": "500ms"}, 30)
    assert policy.wait_s == 120 and policy.looks == 240


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ({"eror_rate": "<= 0.01"}, r"unknown key 'eror_rate' \(valid keys: min_requests"),
        ({"error_rate": ">= 0.01"}, r"error_rate is an upper bound"),
        ({"error_rate": 2}, r"error_rate must be between 0 and 1"),
        ({"alpha": 0}, r"alpha must be a number in \(0, 0.5\]"),
        ({"min_requests": -1}, r"min_requests must be a whole number >= 0"),
        ({"require_feedback": "yes"}, r"require_feedback must be true or false"),
        ({"max_wait": "soon"}, r"max_wait duration"),
        ({"p99_ms": "fast"}, r"p99_ms expected a threshold"),
        ({"predictions": "images"}, r"predictions must be 'auto', 'labels' or 'numbers'"),
        (
            {"max_latency_ratio": [1, 2]},
            r"max_latency_ratio expected a number or a threshold like '<= 0.5', got \[1, 2\]",
        ),
        ({"max_latency_ratio": 0.5}, r"max_latency_ratio must be between 1 and inf"),
    ],
)
def test_bad_analysis_keys_are_refused_with_what_to_write(analysis, message):
    with pytest.raises(ValueError, match=message):
        validate_analysis(analysis)
    with pytest.raises(ValueError, match=message):
        CanaryPolicy.from_config(analysis, 60)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError, match=r"unknown key 'x'.*alpha must"):
        validate_analysis({"x": 1, "alpha": 3})


def test_max_wait_shorter_than_the_step_is_refused():
    with pytest.raises(ValueError, match=r"max_wait \(30s\) must be at least"):
        CanaryPolicy.from_config({"max_wait": "30s"}, 60)

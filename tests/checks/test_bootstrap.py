"""Vectorised bootstrap metrics: equal to scikit-learn with unit weights, equal to a
plain resample-and-score loop with resample weights, and paired as promised."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from shipyard.checks.baseline import compared_metrics, paired_bootstrap
from shipyard.checks.bootstrap import BOOTSTRAP_METRICS, resample_weights, weighted_metric
from shipyard.checks.predictions import Predictions
from shipyard.errors import ConfigError


def binary(seed: int = 0, rows: int = 400, noise: float = 0.3) -> Predictions:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    score = np.clip(truth * 0.4 + rng.random(rows) * 0.6 + rng.normal(0, noise, rows), 0, 1)
    score = np.round(score, 2)  # ties, which AUC must count as halves
    proba = np.column_stack([1 - score, score])
    return Predictions("binary", truth, (score > 0.5).astype(int), proba, np.array([0, 1]))


def multiclass(seed: int = 0, rows: int = 300) -> Predictions:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["a", "b", "c"], rows)
    predicted = np.where(rng.random(rows) < 0.7, truth, rng.choice(["a", "b", "c"], rows))
    proba = rng.dirichlet([1, 1, 1], rows)
    return Predictions("multiclass", truth, predicted, proba, np.array(["a", "b", "c"]))


def regression(seed: int = 0, rows: int = 300) -> Predictions:
    rng = np.random.default_rng(seed)
    truth = rng.normal(10, 3, rows)
    return Predictions("regression", truth, truth + rng.normal(0, 1, rows))


def reference(name: str, p: Predictions) -> float:
    """scikit-learn's value of each metric."""
    average = "binary" if p.task == "binary" else "macro"
    counting = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    base, _, avg = name.partition("_")
    if base in counting:
        return counting[base](p.truth, p.predicted, average=avg or average, zero_division=0)
    if name in ("accuracy", "balanced_accuracy"):
        return getattr(skm, f"{name}_score")(p.truth, p.predicted)
    if name == "roc_auc":
        return skm.roc_auc_score(p.truth, p.proba[:, 1])
    if name == "log_loss":
        return skm.log_loss(p.truth, p.proba, labels=p.classes)
    if name == "brier_score":
        if p.task == "binary":
            return skm.brier_score_loss(p.truth, p.proba[:, 1])
        onehot = (p.truth[:, None] == p.classes[None, :]).astype(float)
        return float(np.mean(((p.proba - onehot) ** 2).sum(axis=1)))
    functions = {
        "mae": skm.mean_absolute_error,
        "mse": skm.mean_squared_error,
        "rmse": skm.root_mean_squared_error,
        "r2": skm.r2_score,
        "mape": skm.mean_absolute_percentage_error,
    }
    return functions[name](p.truth, p.predicted)


CASES = [
    (task, name, make)
    for task, make in (("binary", binary), ("multiclass", multiclass), ("regression", regression))
    for name in BOOTSTRAP_METRICS[task]
]


@pytest.mark.parametrize(("task", "name", "make"), CASES, ids=[f"{t}-{n}" for t, n, _ in CASES])
def test_unit_weights_give_scikit_learns_value(task, name, make):
    p = make()
    ones = np.ones((1, len(p.truth)))
    assert weighted_metric(name, p, ones)[0] == pytest.approx(reference(name, p), rel=1e-9)


@pytest.mark.parametrize("name", ["f1", "roc_auc", "log_loss", "balanced_accuracy"])
def test_resample_weights_equal_scoring_the_resampled_rows(name):
    p = binary(3)
    rng = np.random.default_rng(5)
    weights = next(resample_weights(len(p.truth), 20, rng))
    for row in weights[:5]:
        rows = np.repeat(np.arange(len(p.truth)), row.astype(int))
        picked = Predictions(p.task, p.truth[rows], p.predicted[rows], p.proba[rows], p.classes)
        expected = weighted_metric(name, picked, np.ones((1, len(rows))))[0]
        assert weighted_metric(name, p, row[None, :])[0] == pytest.approx(expected)


def test_each_resample_draws_as_many_rows_as_there_are():
    weights = np.vstack(list(resample_weights(50, 450, np.random.default_rng(0), chunk=200)))
    assert weights.shape == (450, 50)
    assert np.all(weights.sum(axis=1) == 50)
    assert weights.std(axis=0).mean() == pytest.approx(1.0, abs=0.15)  # multinomial(n, 1/n)


def test_a_model_compared_with_itself_never_regresses():
    p = binary()
    samples = paired_bootstrap(p, p, ["f1", "roc_auc"], np.random.default_rng(0), 200)
    assert all(np.all(s == 0) for s in samples.values())


def test_a_clearly_worse_model_regresses_in_almost_every_resample():
    good, bad = binary(noise=0.05), binary(noise=0.6)
    samples = paired_bootstrap(bad, good, ["f1", "log_loss"], np.random.default_rng(0), 300)
    assert (samples["f1"] > 0).mean() > 0.99  # positive regression = worse
    assert (samples["log_loss"] > 0).mean() > 0.99  # oriented for lower-is-better too


def test_compared_metrics_enforce_max_regression_and_show_the_targets():
    shown = compared_metrics(
        "binary", {"auc": 0.01}, {"f1": ">= 0.6", "expected_calibration_error": "<= 0.1"}
    )
    assert shown == {"roc_auc": 0.01, "f1": None}
    assert compared_metrics("regression", {}) == {"rmse": 0.0}


def test_a_metric_without_a_bootstrap_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="cannot be compared by bootstrap") as raised:
        compared_metrics("binary", {"average_precision": 0.01})
    assert "roc_auc" in raised.value.hint

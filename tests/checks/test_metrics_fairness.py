"""The metrics and fairness gates on small, hand-checkable data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from shipyard.checks.base import FAILED, PASSED, CheckContext
from shipyard.checks.fairness import fairness_gate
from shipyard.checks.metrics import canonical_metric, metrics_gate
from shipyard.checks.predictions import task_of_labels
from shipyard.config import FairnessGate
from shipyard.errors import CheckFailed, ConfigError


class Fixed:
    """A stand-in model that returns given predictions."""

    def __init__(self, predicted, proba=None, error=None):
        self.predicted, self.proba, self.error = predicted, proba, error
        self.inputs: list[str] = []

    def predict(self, frame):
        if self.error:
            raise self.error
        return np.asarray(self.predicted)[: len(frame)]

    def predict_proba(self, frame):
        return self.proba


def context(frame: pd.DataFrame, model, label: str = "y") -> CheckContext:
    return CheckContext(
        root=Path("."),
        model=model,
        model_ref="m",
        train=frame,
        test=frame,
        label=label,
        features=[c for c in frame.columns if c != label],
    )


def scored(rows: int = 500, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    score = np.clip(0.3 * truth + 0.7 * rng.random(rows), 0, 1)
    frame = pd.DataFrame({"x": rng.random(rows), "group": rng.choice(["a", "b"], rows), "y": truth})
    return frame, (score > 0.5).astype(int), np.column_stack([1 - score, score])


def test_classification_metrics_match_scikit_learn():
    frame, predicted, proba = scored()
    result = metrics_gate(
        context(frame, Fixed(predicted, proba)), {"f1": ">= 0.1", "auc": ">= 0.99"}
    )
    values = result.numbers["metrics"]
    assert values["f1"] == pytest.approx(skm.f1_score(frame["y"], predicted))
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(frame["y"], proba[:, 1]))
    assert values["brier_score"] == pytest.approx(skm.brier_score_loss(frame["y"], proba[:, 1]))
    assert (
        result.numbers["confusion_matrix"]["matrix"]
        == skm.confusion_matrix(frame["y"], predicted).tolist()
    )
    assert result.status == FAILED
    assert result.summary.startswith("1 of 2 metric target(s) missed: roc_auc = ")
    assert "(needs >= 0.99)" in result.summary and "confusion" in result.advice
    calibration = result.numbers["calibration"]
    assert sum(calibration["count"]) == 500 and len(calibration["mean_predicted"]) <= 10
    assert (
        result.numbers["roc_curve"]["fpr"][0] == 0 and result.numbers["roc_curve"]["tpr"][-1] == 1
    )


def test_regression_metrics_and_residuals():
    rng = np.random.default_rng(0)
    y = rng.normal(50, 10, 300)
    frame = pd.DataFrame({"x": rng.random(300), "y": y})
    predicted = y + rng.normal(0, 2, 300)
    result = metrics_gate(context(frame, Fixed(predicted)), {"rmse": "<= 3", "r2": ">= 0.9"})
    assert result.status == PASSED, result.summary
    assert result.numbers["task"] == "regression"
    assert result.numbers["metrics"]["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted))
    assert len(result.numbers["residuals"]["residual"]) == 300


def test_an_unknown_metric_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown metric 'f2' for a binary") as raised:
        canonical_metric("f2", "binary")
    assert "roc_auc" in raised.value.hint and "f1_weighted" in raised.value.hint
    with pytest.raises(ConfigError, match="'rmse' for a binary classification"):
        canonical_metric("rmse", "binary")
    assert canonical_metric("AUC", "binary") == "roc_auc"


def test_without_probabilities_score_metrics_fail_rather_than_pass():
    frame, predicted, _ = scored()
    result = metrics_gate(context(frame, Fixed(predicted)), {"roc_auc": ">= 0.5"})
    assert result.status == FAILED and "roc_auc = n/a" in result.summary


def test_a_model_error_fails_the_gate_with_the_models_message():
    frame, _, _ = scored()
    model = Fixed(None, error=ValueError("Input X contains NaN"))
    with pytest.raises(CheckFailed, match=r"could not predict.*ValueError: Input X contains NaN"):
        metrics_gate(context(frame, model), {})


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        ([0, 1, 1, 0], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([0.5, 1.5, 2.25], "regression"),
        (list(range(50)), "regression"),
        ([True, False], "binary"),
        ([1.0, 2.0, np.nan, 3.0], "multiclass"),
    ],
)
def test_the_task_comes_from_the_labels(labels, task):
    assert task_of_labels(labels) == task


def biased(rows: int = 600):
    rng = np.random.default_rng(3)
    group = rng.choice(["a", "b"], rows)
    truth = rng.integers(0, 2, rows)
    predicted = np.where(group == "b", rng.random(rows) < 0.8, truth).astype(int)
    return pd.DataFrame({"x": rng.random(rows), "group": group, "y": truth}), predicted


def test_the_group_table_and_parity_metrics():
    frame, predicted = biased()
    cfg = FairnessGate(sensitive=["group"], demographic_parity_difference="<= 0.1")
    result = fairness_gate(context(frame, Fixed(predicted)), cfg)
    rows = {r["group"]: r for r in result.tables["groups:group"]}
    in_b = (frame["group"] == "b").to_numpy()
    assert rows["b"]["count"] == in_b.sum()
    assert rows["b"]["selection_rate"] == pytest.approx(predicted[in_b].mean())
    truth_a, pred_a = frame["y"].to_numpy()[~in_b], predicted[~in_b]
    assert rows["a"]["tpr"] == pytest.approx(pred_a[truth_a == 1].mean())
    assert rows["a"]["fpr"] == pytest.approx(pred_a[truth_a == 0].mean())
    values = result.numbers["attributes"]["group"]
    gap = abs(rows["a"]["selection_rate"] - rows["b"]["selection_rate"])
    assert values["demographic_parity_difference"] == pytest.approx(gap)
    assert values["demographic_parity_ratio"] < 1 and set(values) >= {"equal_opportunity_ratio"}
    assert result.status == FAILED
    assert "demographic_parity_difference for 'group' =" in result.summary


def test_a_missing_sensitive_attribute_is_a_config_error():
    frame, predicted = biased()
    cfg = FairnessGate(sensitive=["race"])
    with pytest.raises(ConfigError, match=r"attribute\(s\) \['race'\] are not columns") as raised:
        fairness_gate(context(frame, Fixed(predicted)), cfg)
    assert "x, group, y" in str(raised.value)


def test_weighted_distinct_rows_give_fairlearns_numbers_on_all_rows():
    import fairlearn.metrics as fm
    from sklearn.metrics import f1_score

    from shipyard.checks.fairness import PARITY_METRICS, group_table, parity

    frame, predicted = biased(300)
    truth, groups = frame["y"].to_numpy(), frame["group"].to_numpy()
    expected = {
        name: getattr(fm, name)(truth, predicted, sensitive_features=groups)
        for name in PARITY_METRICS
    }
    assert parity(truth, predicted, groups) == pytest.approx(expected)
    plain = fm.MetricFrame(
        metrics={"f1": f1_score, "fpr": fm.false_positive_rate, "count": fm.count},
        y_true=truth,
        y_pred=predicted,
        sensitive_features=groups,
    ).by_group
    for row in group_table(truth, predicted, groups):
        assert row["f1"] == pytest.approx(plain.loc[row["group"], "f1"])
        assert row["fpr"] == pytest.approx(plain.loc[row["group"], "fpr"])
        assert row["count"] == plain.loc[row["group"], "count"]

"""Concept drift: windowed metrics from feedback, change detectors, label-free estimates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from shipyard.monitor.performance import (
    ADWIN,
    PageHinkley,
    correct,
    estimate_performance,
    join_feedback,
    windowed_metrics,
)

EXAMPLE = Path(__file__).parents[2] / "src/shipyard/scaffold/examples/credit-risk"
HOUR = 3600.0


def prediction_log(predictions: list, start: float = 0.0, step: float = 60.0) -> pd.DataFrame:
    """Records as the gateway writes them: one row per request here."""
    return pd.DataFrame(
        {
            "ts": start + step * np.arange(len(predictions)),
            "request_id": [f"r{i}" for i in range(len(predictions))],
            "row": 0,
            "model": "m",
            "prediction": predictions,
        }
    )


def feedback_log(labels: list, ids: list[int] | None = None) -> pd.DataFrame:
    ids = list(range(len(labels))) if ids is None else ids
    return pd.DataFrame(
        {
            "ts": [10_000.0 + i for i in range(len(ids))],
            "request_id": [f"r{i}" for i in ids],
            "row": 0,
            "label": [str(label) for label in labels],
            "model": "m",
        }
    )


def test_labels_are_compared_as_numbers_when_both_parse_else_as_text() -> None:
    predictions = [1, 0, "yes", True, 2.0, "cat", 1, "no", False, 3]
    labels = ["1", "0.0", "yes", "true", "2", "cat", "1.5", "yes", "1", "three"]
    assert correct(predictions, labels).tolist() == [True] * 6 + [False] * 4


def test_hourly_accuracy_and_f1_from_joined_feedback() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 180)  # 3 hours, one request a minute
    predictions = truth.copy()
    predictions[:6] ^= 1  # hour 1: 90 % right
    predictions[60:66] ^= 1  # hour 2: 90 % right
    predictions[120:150] ^= 1  # hour 3: 50 % right (concept drift)
    log = prediction_log(predictions.tolist())
    answered = [i for i in range(180) if i % 10 != 9]  # some feedback never arrives
    feedback = feedback_log([int(truth[i]) for i in answered], answered)
    stale = feedback_log([1 - int(truth[0])], [0])  # an earlier, corrected label for r0
    stale["ts"] = 0.0

    windows = windowed_metrics(log, pd.concat([stale, feedback]), window="1h")

    assert windows["rows"].tolist() == [54, 54, 54]
    for index, hour in enumerate((range(0, 60), range(60, 120), range(120, 180))):
        kept = [i for i in hour if i % 10 != 9]
        expected = np.mean(predictions[kept] == truth[kept])
        assert windows["accuracy"][index] == pytest.approx(expected)
        assert windows["f1"][index] == pytest.approx(f1_score(truth[kept], predictions[kept]))
        assert windows["f1_macro"][index] == pytest.approx(
            f1_score(truth[kept], predictions[kept], average="macro")
        )
    assert windows["accuracy"][2] < 0.6 < 0.85 < windows["accuracy"][0]


def test_regression_windows_by_row_count() -> None:
    predictions = np.linspace(0, 10, 25)
    labels = predictions + np.r_[np.full(10, 0.5), np.full(10, -1.0), np.full(5, 2.0)]
    windows = windowed_metrics(
        prediction_log(predictions.tolist()),
        feedback_log([f"{v:.6f}" for v in labels]),
        task="regression",
        window=10,
    )
    assert windows["rows"].tolist() == [10, 10, 5]
    assert windows["mae"].tolist() == pytest.approx([0.5, 1.0, 2.0])
    assert windows["bias"].tolist() == pytest.approx([-0.5, 1.0, -2.0])
    assert windows["rmse"].tolist() == pytest.approx([0.5, 1.0, 2.0])


def test_join_needs_the_log_columns_and_bad_windows_are_refused() -> None:
    log = prediction_log([1, 0])
    with pytest.raises(ValueError, match="feedback log lacks column"):
        join_feedback(log, pd.DataFrame({"request_id": ["r0"], "row": [0]}))
    for window in ("soon", 0, -5, 1.5):
        with pytest.raises(ValueError, match="window"):
            windowed_metrics(log, feedback_log([1, 0]), window=window)
    assert windowed_metrics(log, feedback_log([])).empty


def _first_alarm(detector, stream) -> int | None:
    for index, value in enumerate(stream):
        if detector.update(value):
            return index
    return None


def test_page_hinkley_finds_a_mean_shift_quickly_and_stays_quiet_without_one() -> None:
    delays, false_alarms = [], 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        quiet = rng.normal(0.0, 1.0, 3000)
        # for a unit-variance stream: delta = half the shift to find, threshold = 10 sd
        false_alarms += _first_alarm(PageHinkley(delta=0.5, threshold=10), quiet) is not None
        stream = np.r_[rng.normal(0.0, 1.0, 1000), rng.normal(1.0, 1.0, 1000)]
        alarm = _first_alarm(PageHinkley(delta=0.5, threshold=10), stream)
        assert alarm is not None and alarm >= 1000
        delays.append(alarm - 1000)
    print(f"\nPage-Hinkley: delay median {np.median(delays):.0f}, max {max(delays)}; "
          f"false alarms {false_alarms}/20 streams of 3000")  # fmt: skip
    assert max(delays) <= 150
    assert false_alarms <= 1


def test_adwin_finds_a_rise_in_the_error_rate_and_stays_quiet_without_one() -> None:
    delays, false_alarms = [], 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        false_alarms += _first_alarm(ADWIN(), rng.random(3000) < 0.1) is not None
        detector = ADWIN()
        alarm = _first_alarm(detector, np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3])
        assert alarm is not None and alarm >= 2000
        assert len(detector.window) < 1000  # the old part was dropped
        delays.append(alarm - 2000)
    print(f"\nADWIN: delay median {np.median(delays):.0f}, max {max(delays)}; "
          f"false alarms {false_alarms}/20 streams of 3000")  # fmt: skip
    assert max(delays) <= 300
    assert false_alarms <= 1


def test_estimates_match_realised_metrics_for_a_calibrated_classifier() -> None:
    rng = np.random.default_rng(1)
    scores = rng.beta(2, 3, 100_000)
    labels = rng.random(scores.size) < scores  # calibrated by construction
    predicted = scores >= 0.5

    estimate = estimate_performance(scores)

    realised = {
        "accuracy": np.mean(predicted == labels),
        "precision": labels[predicted].mean(),
        "recall": predicted[labels].mean(),
        "f1": f1_score(labels, predicted),
    }
    errors = {k: abs(estimate[k] - v) for k, v in realised.items()}
    print(f"\nCBPE on a calibrated synthetic classifier: absolute errors {errors}")
    assert max(errors.values()) < 0.01


def test_multiclass_estimate_matches_realised_accuracy() -> None:
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([1.0, 2.0, 3.0], 50_000)
    labels = (rng.random((proba.shape[0], 1)) > proba.cumsum(axis=1)).sum(axis=1)
    chosen = proba.argmax(axis=1)
    estimate = estimate_performance(proba)
    assert estimate["accuracy"] == pytest.approx(np.mean(chosen == labels), abs=0.01)
    assert estimate["f1_macro"] == pytest.approx(
        f1_score(labels, chosen, average="macro"), abs=0.015
    )


def test_bad_scores_are_refused() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        estimate_performance([0.2, 1.7])
    with pytest.raises(ValueError, match="sum to 1"):
        estimate_performance([[0.2, 0.2], [0.5, 0.5]])
    with pytest.raises(ValueError, match="no scores"):
        estimate_performance([np.nan])


def _train_example(folder: Path) -> tuple[object, pd.DataFrame]:
    """The credit-risk example's own scripts: make data, prepare, train."""
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True)
    for script in (
        ["src/make_data.py", "data/raw.csv", "5000", "42"],
        ["src/prepare.py", "data/raw.csv", "data/prepared"],
        ["src/train.py", "data/prepared", "model"],
    ):
        subprocess.run([sys.executable, *script], cwd=folder, check=True, capture_output=True)
    import skops.io as sio

    path = folder / "model" / "model.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))  # our own file
    return model, pd.read_csv(folder / "data/prepared/test.csv")


def test_estimate_on_the_credit_risk_example(tmp_path: Path) -> None:
    model, test_set = _train_example(tmp_path / "credit-risk")
    sys.path.insert(0, str(tmp_path / "credit-risk" / "src"))
    try:
        from make_data import make  # the example's generator, for fresh traffic
    finally:
        sys.path.pop(0)
    inputs = ["age", "income", "debt_ratio", "history_years", "amount", "purpose"]
    traffic = make(20_000, seed=7)
    scores = model.predict_proba(traffic[inputs])[:, 1]
    labels = traffic["default"].to_numpy() == 1
    calibration = (model.predict_proba(test_set[inputs])[:, 1], test_set["default"].to_numpy())

    raw = estimate_performance(scores)
    calibrated = estimate_performance(scores, calibration=calibration)

    predicted = scores >= 0.5
    realised = {"accuracy": np.mean(predicted == labels), "f1": f1_score(labels, predicted)}
    for name, estimate in (("raw scores", raw), ("calibrated on test set", calibrated)):
        errors = {k: round(abs(estimate[k] - v), 4) for k, v in realised.items()}
        print(f"\ncredit-risk CBPE ({name}): realised {realised}, errors {errors}")
    assert abs(raw["accuracy"] - realised["accuracy"]) < 0.02
    assert abs(calibrated["accuracy"] - realised["accuracy"]) < 0.02
    assert abs(raw["f1"] - realised["f1"]) < 0.05
    assert abs(calibrated["f1"] - realised["f1"]) < 0.05

"""Concept drift: is the model still right? From feedback when it comes, estimated when not.

* ``join_feedback`` and ``windowed_metrics`` join the prediction log with the feedback
  log on (request_id, row) and compute accuracy / F1 (classification) or MAE / RMSE
  (regression) per time window (``"1h"``) or per block of rows. Feedback labels
  arrive as text, so a prediction is right when both read as the same number (``1``
  and ``"1.0"``, ``True`` and ``"true"``) or, failing that, as the same text. When a
  row got feedback twice, the latest label counts.
* ``PageHinkley`` and ``ADWIN`` are streaming change detectors, ``update(x) -> bool``:
  Page–Hinkley (a CUSUM) for a shift in the mean of a stream whose spread you know
  (a residual, a score); ADWIN for any bounded stream (a 0/1 error stream) without
  tuning beyond a confidence ``delta``. Small and ours: deterministic, no dependency.
  (DDM was tried and dropped: its running minimum of p + s makes it raise false alarms
  on long stationary streams — 8 of 40 streams of 3,000 at a 10 % error rate.)
* ``estimate_performance`` is confidence-based performance estimation (CBPE): with
  calibrated probabilities, a row predicted positive with probability p is a true
  positive with probability p, so expected confusion-matrix cells, and the
  accuracy, precision, recall and F1 built from them, need no labels. Pass
  ``calibration=(scores, labels)`` from a labelled window (the test set) to calibrate
  the scores first (isotonic regression): CBPE is only as good as the calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ADWIN",
    "PageHinkley",
    "correct",
    "estimate_performance",
    "join_feedback",
    "windowed_metrics",
]

_TRUE_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


def _as_numbers(values: Any) -> np.ndarray:
    """Each value as a float where it reads as a number (booleans as 0/1), else NaN."""
    import pandas as pd

    series = pd.Series(values, copy=False)
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.asarray(series.to_numpy(dtype=float))
    text = series.astype(str).str.strip()
    words = text.str.lower().map(_TRUE_WORDS)
    numbers = pd.to_numeric(text, errors="coerce")
    return np.asarray(numbers.fillna(words).to_numpy(dtype=float, na_value=np.nan))


def _as_text(values: Any) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.Series(values, copy=False).astype(str).str.strip().to_numpy())


def correct(predictions: Any, labels: Any) -> np.ndarray:
    """Per row: does the prediction equal the label (as numbers when both parse)?"""
    predicted, actual = _as_numbers(predictions), _as_numbers(labels)
    numeric = ~np.isnan(predicted) & ~np.isnan(actual)
    same_text = _as_text(predictions) == _as_text(labels)
    return np.asarray(np.where(numeric, predicted == actual, same_text), dtype=bool)


def join_feedback(predictions: Any, feedback: Any) -> Any:
    """Prediction records with their feedback label (inner join on request_id, row)."""
    import pandas as pd

    predictions, feedback = _pandas(predictions), _pandas(feedback)
    for name, frame, needed in (
        ("predictions", predictions, ("request_id", "row", "prediction", "ts")),
        ("feedback", feedback, ("request_id", "row", "label")),
    ):
        missing = [column for column in needed if column not in frame.columns]
        if missing and len(frame):
            raise ValueError(f"{name} log lacks column(s) {', '.join(missing)}")
    if not len(predictions) or not len(feedback):
        return pd.DataFrame(columns=["ts", "request_id", "row", "prediction", "label"])
    if "ts" in feedback.columns:
        feedback = feedback.sort_values("ts", kind="stable")
    labels = feedback.drop_duplicates(["request_id", "row"], keep="last")
    labels = labels[["request_id", "row", "label"]]
    joined = predictions.merge(labels, on=["request_id", "row"], how="inner")
    return joined.sort_values("ts", kind="stable").reset_index(drop=True)


def _pandas(frame: Any) -> Any:
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):  # polars, pyarrow
        return frame.to_pandas()
    return pd.DataFrame(frame)


def _classification(predictions: Any, labels: Any) -> dict[str, float]:
    right = correct(predictions, labels)
    predicted, actual = _as_text(predictions), _as_text(labels)
    numbers = _as_numbers(predictions), _as_numbers(labels)
    both = ~np.isnan(numbers[0]) & ~np.isnan(numbers[1])
    # compare classes in one vocabulary: the numeric form where both sides have one
    predicted = np.where(both, numbers[0].astype(str), predicted)
    actual = np.where(both, numbers[1].astype(str), actual)
    scores = [_f1(predicted == c, actual == c) for c in np.unique(actual)]
    metrics = {"accuracy": float(right.mean()), "f1_macro": float(np.mean(scores))}
    if both.all() and set(np.unique(numbers[1])) <= {0.0, 1.0}:
        metrics.update(_binary(numbers[0] == 1.0, numbers[1] == 1.0))
    return metrics


def _f1(predicted: np.ndarray, actual: np.ndarray) -> float:
    tp = float(np.sum(predicted & actual))
    wrong = float(np.sum(predicted ^ actual))
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def _binary(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    tp = float(np.sum(predicted & actual))
    fp, fn = float(np.sum(predicted & ~actual)), float(np.sum(~predicted & actual))
    return {
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "f1": _f1(predicted, actual),
    }


def _regression(predictions: Any, labels: Any) -> dict[str, float]:
    predicted, actual = _as_numbers(predictions), _as_numbers(labels)
    usable = ~np.isnan(predicted) & ~np.isnan(actual)
    error = predicted[usable] - actual[usable]
    if not error.size:
        return {"mae": math.nan, "rmse": math.nan, "bias": math.nan, "unparsed": float(len(usable))}
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "bias": float(error.mean()),
        "unparsed": float((~usable).sum()),
    }


def _windows(joined: Any, window: str | int) -> Any:
    import pandas as pd

    if isinstance(window, bool) or not isinstance(window, int | str):
        raise ValueError(f"window must be a duration like '1h' or a row count, got {window!r}")
    if isinstance(window, int):
        if window < 1:
            raise ValueError(f"window must be at least 1 row, got {window}")
        return np.arange(len(joined)) // window
    try:
        width = pd.Timedelta(window)
    except ValueError:
        raise ValueError(
            f"window {window!r} is not a duration: use e.g. '15min', '1h', '1d'"
        ) from None
    if width <= pd.Timedelta(0):
        raise ValueError(f"window must be positive, got {window!r}")
    stamps = pd.to_datetime(joined["ts"].astype(float), unit="s", utc=True)
    return stamps.dt.floor(width)


def windowed_metrics(
    predictions: Any,
    feedback: Any,
    *,
    task: str = "classification",
    window: str | int = "1h",
) -> Any:
    """A pandas DataFrame, one row per window: start, end, rows, and the metrics.

    Classification: accuracy, f1_macro, and precision/recall/f1 of class 1 when the
    labels are 0/1. Regression: mae, rmse, bias (mean of prediction - label) and how
    many labels did not read as numbers. Windows without feedback are left out.
    """
    import pandas as pd

    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    joined = join_feedback(predictions, feedback)
    if not len(joined):
        return pd.DataFrame(columns=["window_start", "window_end", "rows"])
    measure = _classification if task == "classification" else _regression
    rows = []
    for _, group in joined.groupby(_windows(joined, window), sort=True):
        metrics = measure(group["prediction"].to_numpy(), group["label"].to_numpy())
        rows.append(
            {
                "window_start": float(group["ts"].min()),
                "window_end": float(group["ts"].max()),
                "rows": len(group),
                **metrics,
            }
        )
    return pd.DataFrame(rows)


# --- streaming change detectors ----------------------------------------------------


@dataclass
class PageHinkley:
    """Page–Hinkley test for an increase (or, with ``direction=-1``, a decrease) in a mean.

    Tracks m_t = sum(x_i - mean_i - delta); alarms when m_t - min(m) > ``threshold``
    after ``min_instances`` values, then resets to detect the next change. The defaults
    are the usual ones (for streams with a standard deviation of a few units); in
    standard deviations of the stream, take ``delta`` about half the smallest shift
    worth detecting and ``threshold`` about 10 (false alarms become rare, and a shift
    of d is found after roughly threshold / (d - delta) values).
    """

    delta: float = 0.005
    threshold: float = 50.0
    min_instances: int = 30
    direction: int = 1
    count: int = field(default=0, init=False)
    mean: float = field(default=0.0, init=False)
    cumulative: float = field(default=0.0, init=False)
    minimum: float = field(default=0.0, init=False)

    def update(self, x: float) -> bool:
        self.count += 1
        self.mean += (x - self.mean) / self.count
        self.cumulative += self.direction * (x - self.mean) - self.delta
        self.minimum = min(self.minimum, self.cumulative)
        if self.count >= self.min_instances and self.cumulative - self.minimum > self.threshold:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        self.count, self.mean, self.cumulative, self.minimum = 0, 0.0, 0.0, 0.0


class ADWIN:
    """ADWIN (Bifet and Gavaldà, 2007): an adaptive window that drops its older part when
    the two parts' means differ by more than chance allows.

    Every ``clock`` values, each split of the window into an older and a newer part
    with at least ``min_side`` values is tested with the bound
    eps = sqrt(2 var ln(2/d) / m) + 2 ln(2/d) / (3m), m = 1 / (1/n0 + 1/n1),
    d = ``delta`` / ln(n); ``update`` returns True when a cut happened (a change). The
    splits are checked with cumulative sums in numpy; the window keeps at most
    ``max_window`` values. Works on any bounded stream: a 0/1 error stream, a score.
    """

    def __init__(
        self, delta: float = 0.002, *, clock: int = 32, min_side: int = 16, max_window: int = 20_000
    ) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be between 0 and 1, got {delta!r}")
        self.delta, self.clock, self.min_side, self.max_window = delta, clock, min_side, max_window
        self.window: list[float] = []
        self.seen = 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.window)) if self.window else math.nan

    def update(self, x: float) -> bool:
        self.window.append(float(x))
        if len(self.window) > self.max_window:
            del self.window[0]
        self.seen += 1
        if self.seen % self.clock or len(self.window) < 2 * self.min_side:
            return False
        changed = False
        while (cut := self._cut()) is not None:
            del self.window[:cut]
            changed = True
        return changed

    def _cut(self) -> int | None:
        """The newest split whose two sides differ significantly, if any."""
        values = np.asarray(self.window)
        n = values.size
        if n < 2 * self.min_side:
            return None
        splits = np.arange(self.min_side, n - self.min_side + 1)
        prefix = np.cumsum(values)[splits - 1]
        older, newer = prefix / splits, (values.sum() - prefix) / (n - splits)
        harmonic = 1.0 / (1.0 / splits + 1.0 / (n - splits))
        log_term = math.log(2.0 * math.log(n) / self.delta)
        bound = np.sqrt(2.0 * values.var() * log_term / harmonic) + 2.0 * log_term / (
            3.0 * harmonic
        )
        significant = np.flatnonzero(np.abs(older - newer) > bound)
        return int(splits[significant[-1]]) if significant.size else None


# --- label-free estimation ---------------------------------------------------------


def _calibrated(scores: np.ndarray, calibration: tuple[Any, Any] | None) -> np.ndarray:
    if calibration is None:
        return scores
    from sklearn.isotonic import IsotonicRegression

    known_scores, labels = (np.asarray(v, dtype=float) for v in calibration)
    if known_scores.shape != labels.shape or known_scores.ndim != 1:
        raise ValueError("calibration must be (scores, labels): two 1-D arrays of one length")
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    return np.asarray(fitted.fit(known_scores, labels).predict(scores), dtype=float)


def _expected_binary(p: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """Expected cells when row i is positive with probability p[i] and the model said
    ``positive[i]``."""
    tp, fp = float(p[positive].sum()), float((1 - p[positive]).sum())
    fn, tn = float(p[~positive].sum()), float((1 - p[~positive]).sum())
    return {
        "rows": float(p.size),
        "accuracy": (tp + tn) / p.size,
        "precision": tp / (tp + fp) if positive.any() else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan,
        "positive_rate": float(positive.mean()),
        "expected_positive_share": float(p.mean()),
    }


def _expected_multiclass(proba: np.ndarray) -> dict[str, float]:
    chosen = proba.argmax(axis=1)
    f1s = []
    for k in range(proba.shape[1]):
        picked = chosen == k
        tp = float(proba[picked, k].sum())
        fp = float(picked.sum()) - tp
        fn = float(proba[~picked, k].sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {
        "rows": float(proba.shape[0]),
        "accuracy": float(proba.max(axis=1).mean()),
        "f1_macro": float(np.mean(f1s)),
    }


def estimate_performance(
    scores_or_proba: Sequence[float] | Any,
    *,
    threshold: float = 0.5,
    calibration: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    """Expected metrics from predicted probabilities alone (no labels).

    A 1-D array holds the positive-class probability (the ``score`` the gateway logs
    for binary models) and gives accuracy, precision, recall, F1 at ``threshold``; a
    2-D array holds class probabilities (rows sum to 1) and gives accuracy and macro
    F1 for argmax predictions. Missing scores are left out. ValueError on scores outside
    [0, 1], rows that do not sum to 1, or nothing to estimate from.
    """
    values = np.asarray(scores_or_proba, dtype=float)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 1:
        values = values[~np.isnan(values)]
        if not values.size:
            raise ValueError("no scores to estimate performance from")
        if values.min() < 0 or values.max() > 1:
            raise ValueError("scores must be probabilities in [0, 1]")
        # the model decides on its own scores; calibration only corrects the odds
        return _expected_binary(_calibrated(values, calibration), values >= threshold)
    if values.ndim != 2 or not values.size:
        raise ValueError("pass a 1-D array of scores or a 2-D array of class probabilities")
    values = values[~np.isnan(values).any(axis=1)]
    if not np.allclose(values.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("class probabilities must sum to 1 in every row")
    return _expected_multiclass(values)

"""Predictions on the held-out set, made once per check and shared by the gates.

The task (binary, multiclass or regression) comes from the label: text, booleans and
whole numbers with few distinct values are classes; anything else is a quantity.
Predicting is where the user's model code runs, so its failures are translated here
into CheckFailed (the gate that asked fails with the model's message) instead of a
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.checks.base import CheckContext
from shipyard.errors import CheckFailed, ConfigError

__all__ = ["MAX_CLASSES", "Predictions", "predictions", "task_of", "task_of_labels"]

MAX_CLASSES = 20  # whole-number labels with more distinct values are a regression target


@dataclass(frozen=True)
class Predictions:
    """One model's output on the held-out rows, aligned with the true labels."""

    task: str  # binary | multiclass | regression
    truth: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray | None = None  # (rows, classes), columns in ``classes`` order
    classes: np.ndarray | None = None

    @property
    def positive(self) -> Any:
        """The positive class of a binary task: the last (largest) class."""
        return None if self.classes is None else self.classes[-1]

    @property
    def score(self) -> np.ndarray | None:
        """Probability of the positive class (binary) or None."""
        if self.proba is None or self.task != "binary":
            return None
        return self.proba[:, -1]


def task_of_labels(labels: Any) -> str:
    """binary, multiclass or regression, judged from the label values alone."""
    import pandas as pd

    values = pd.Series(labels).dropna()
    kind = values.dtype.kind
    distinct = values.nunique()
    if kind == "f" and not np.all(np.mod(values.to_numpy(), 1) == 0):
        return "regression"
    if kind in "iuf" and distinct > MAX_CLASSES:
        return "regression"
    return "binary" if distinct <= 2 else "multiclass"


def task_of(ctx: CheckContext) -> str:
    """The task of this check, from the training labels (or the held-out ones)."""
    if "task" not in ctx.cache:
        frame = ctx.train if ctx.train is not None else ctx.test
        if frame is None or ctx.label is None:
            raise ConfigError("this gate needs labelled data: set gates.data.train/test/label")
        ctx.cache["task"] = task_of_labels(frame[ctx.label])
    return str(ctx.cache["task"])


def _model_classes(model: Any, labels: Any) -> np.ndarray:
    """The class order of predict_proba's columns: the model's own ``classes_`` when
    the flavor exposes it (scikit-learn), else the sorted training labels."""
    inner = getattr(getattr(model, "model", None), "model", None)
    classes = getattr(inner, "classes_", None)
    if classes is not None:
        return np.asarray(classes)
    return np.asarray(sorted(labels.dropna().unique()))


def _inputs(ctx: CheckContext, model: Any) -> Any:
    # A model with a signature picks its own columns (the baseline may use other
    # inputs than the candidate); one without gets the candidate's features.
    return ctx.test if model.inputs else ctx.test[ctx.features]


def _predict(ctx: CheckContext, model: Any, which: str) -> Predictions:
    task = task_of(ctx)
    truth = ctx.test[ctx.label].to_numpy()
    frame = _inputs(ctx, model)
    try:
        predicted = np.asarray(model.predict(frame))
        proba = None if task == "regression" else model.predict_proba(frame)
    except Exception as exc:  # the user's model code: any failure is its own message
        raise CheckFailed(
            f"the {which} model could not predict on the held-out data: "
            f"{type(exc).__name__}: {str(exc).strip()[:300]}",
            hint="fix the data (see the data gate) or the model's input handling",
        ) from None
    if predicted.ndim > 1:
        predicted = predicted.reshape(len(predicted), -1)[:, 0]
    if task == "regression":
        return Predictions(task, truth.astype(float), predicted.astype(float))
    train = ctx.train if ctx.train is not None else ctx.test
    classes = _model_classes(model, train[ctx.label])
    proba = None if proba is None else np.asarray(proba, dtype=float)
    return Predictions(task, truth, predicted, proba, classes)


def predictions(ctx: CheckContext, which: str = "candidate") -> Predictions:
    """The candidate's (or, with ``which="baseline"``, the baseline's) predictions on
    ``ctx.test``, computed on first use and cached in ``ctx.cache``.

    Raises CheckFailed when the model raises while predicting.
    """
    key = f"predictions:{which}"
    if key not in ctx.cache:
        model = ctx.model if which == "candidate" else ctx.baseline
        if model is None:
            raise CheckFailed(f"there is no {which} model to predict with")
        ctx.cache[key] = _predict(ctx, model, which)
    result: Predictions = ctx.cache[key]
    return result

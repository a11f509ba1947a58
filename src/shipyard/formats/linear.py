"""Linear scikit-learn models compiled to a few numpy operations.

Serving a logistic regression through scikit-learn costs ~100 µs per single-row call in
input checks and dispatch; the arithmetic itself is a dot product. For the shapes we
recognise — an optional StandardScaler followed by LogisticRegression, LinearRegression,
Ridge or Lasso — this builds the same computation in numpy, checks it against
scikit-learn on probe inputs at load time, and is only used when the two agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CompiledLinear", "compile_linear"]


class CompiledLinear:
    """Predicts from a 2-D float array (columns in signature order)."""

    def __init__(
        self,
        mean: np.ndarray | None,
        scale: np.ndarray | None,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: np.ndarray | None,
    ) -> None:
        self.mean, self.scale = mean, scale
        self.coef_t = np.ascontiguousarray(coef.T)
        self.intercept = intercept
        self.classes = classes

    def _scores(self, x: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            x = (x - self.mean) / self.scale
        return x @ self.coef_t + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray | None:
        if self.classes is None:
            return None
        scores = self._scores(x)
        if scores.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.classes is None:
            scores = self._scores(x)
            return scores[:, 0] if scores.shape[1] == 1 else scores
        proba = self.predict_proba(x)
        assert proba is not None
        return self.classes[proba.argmax(axis=1)]


def _parts(model: Any) -> tuple[Any | None, Any] | None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step != "passthrough"]
        if len(steps) == 2 and type(steps[0]) is StandardScaler:
            return steps[0], steps[1]
        if len(steps) == 1:
            return None, steps[0]
        return None
    return None, model


def compile_linear(model: Any, width: int, *, seed: int = 0) -> CompiledLinear | None:
    """A numpy twin of ``model``, or None when it is not a recognised linear shape or
    the twin disagrees with scikit-learn on probe inputs."""
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge

    parts = _parts(model)
    if parts is None:
        return None
    scaler, estimator = parts
    kind = type(estimator)
    if kind not in (LogisticRegression, LinearRegression, Ridge, Lasso):
        return None
    if getattr(estimator, "n_features_in_", None) != width:
        return None
    if kind is LogisticRegression and getattr(estimator, "multi_class", "auto") == "ovr":
        return None
    mean = scale = None
    if scaler is not None:
        if not (scaler.with_mean and scaler.with_std):
            return None
        mean, scale = scaler.mean_, scaler.scale_
    coef = np.atleast_2d(estimator.coef_)
    intercept = np.atleast_1d(estimator.intercept_)
    classes = getattr(estimator, "classes_", None) if kind is LogisticRegression else None
    twin = CompiledLinear(mean, scale, coef, intercept, classes)
    probe = np.random.default_rng(seed).normal(size=(64, width)) * 3
    if mean is not None:
        probe = probe * scale + mean
    if not _agrees(model, twin, probe, classes is not None):
        return None
    return twin


def _agrees(model: Any, twin: CompiledLinear, probe: np.ndarray, classifier: bool) -> bool:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fitted with feature names, probed with an array
        if classifier:
            expected = model.predict_proba(probe)
            got = twin.predict_proba(probe)
            return got is not None and np.allclose(expected, got, rtol=1e-7, atol=1e-9)
        return bool(
            np.allclose(
                np.ravel(model.predict(probe)), np.ravel(twin.predict(probe)), rtol=1e-7, atol=1e-9
            )
        )

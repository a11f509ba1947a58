"""Configuration checks that run before any gate, so a bad setup exits 2 at once with
every detail, instead of failing a gate (exit 1) for a reason that is not the model's.
"""

from __future__ import annotations

from typing import Any

from shipyard.checks.base import CheckContext
from shipyard.errors import ConfigError

__all__ = ["check_context", "check_gate_settings", "label_of"]


def label_of(data_cfg: Any, model: Any) -> str:
    """The label column: ``gates.data.label``, else the model signature's output."""
    label = data_cfg.label or model.signature.get("output")
    if not label:
        raise ConfigError(
            "gates.data.label is not set and the model's signature names no output",
            hint="set gates.data.label to the name of the label column",
        )
    return str(label)


def _columns(frame: Any) -> str:
    return ", ".join(map(str, frame.columns))


def _check_label(name: str, frame: Any, label: str, path: str) -> None:
    if label not in frame.columns:
        raise ConfigError(
            f"label column '{label}' is not in the {name} data '{path}' "
            f"(columns: {_columns(frame)})",
            hint="fix gates.data.label (or the model signature's 'output')",
        )


def _check_features(frame: Any, features: list[str], path: str) -> None:
    absent = [f for f in features if f not in frame.columns]
    if absent:
        raise ConfigError(
            f"the model's input column(s) {absent} are not in the test data '{path}' "
            f"(columns: {_columns(frame)})",
            hint="check the model's signature.json against the data it is checked on",
        )


def _check_empty_columns(name: str, frame: Any, columns: list[str], path: str) -> None:
    empty = [c for c in columns if c in frame.columns and frame[c].isna().all()]
    if empty:
        raise ConfigError(
            f"column(s) {empty} of the {name} data '{path}' have no values at all",
            hint="fix the step that writes the data, or drop the column from the model",
        )


def _check_classes(name: str, frame: Any, label: str, path: str) -> None:
    values = frame[label].dropna().unique()
    if len(values) < 2:
        shown = [v.item() if hasattr(v, "item") else v for v in values]
        raise ConfigError(
            f"the label '{label}' of the {name} data '{path}' has a single value {shown}: "
            "no metric can be computed on it",
            hint="check the split (stratify on the label) and the label column name",
        )


def check_context(ctx: CheckContext, paths: dict[str, str | None]) -> None:
    """The label, model inputs and data are usable together."""
    assert ctx.label is not None
    frames = {n: f for n, f in (("train", ctx.train), ("test", ctx.test)) if f is not None}
    for name, frame in frames.items():
        _check_label(name, frame, ctx.label, paths[name] or "")
    if ctx.test is not None:
        _check_features(ctx.test, ctx.features, paths["test"] or "")
    for name, frame in frames.items():
        _check_empty_columns(name, frame, [*ctx.features, ctx.label], paths[name] or "")
        _check_classes(name, frame, ctx.label, paths[name] or "")


def check_gate_settings(ctx: CheckContext, gates: Any, task: str) -> None:
    """Metric names, baseline metrics, fairness attributes, expectations, schema file."""
    from shipyard.checks.baseline import compared_metrics
    from shipyard.checks.expectations import parse_expectations
    from shipyard.checks.fairness import validate
    from shipyard.checks.metrics import canonical_metric

    for name in gates.metrics:
        canonical_metric(name, task)
    if gates.baseline is not None:
        compared_metrics(task, gates.baseline.max_regression, gates.metrics)
    if gates.fairness is not None:
        validate(gates.fairness, list(ctx.test.columns), task)
    if gates.data is not None:
        parse_expectations(list(gates.data.expectations))
        if gates.data.schema_ != "auto":
            from shipyard.checks.schema import load_schema

            load_schema(ctx.root / gates.data.schema_)

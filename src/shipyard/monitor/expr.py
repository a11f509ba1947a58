"""A safe evaluator for alert conditions (``when: "drift.share > 0.3"``).

A condition is parsed with Python's :mod:`ast` and checked against an allow-list:
metric names (dotted, e.g. ``drift.feature.income``, or ``drift.feature["debt-ratio"]``
for names that are not identifiers), numbers, comparisons (chained too), ``and`` /
``or`` / ``not``, ``+ - * /``, unary minus and the functions ``abs``, ``min`` and
``max``. Nothing else parses: no calls to other names, no subscripts other than a
string after a metric, no attribute access on anything but a metric path. The tree is
then walked by our own interpreter; ``eval`` is never used, so a condition in a
``shipyard.yaml`` cannot run code.

A metric that has no value in a pass (no feedback yet, no traffic) makes the whole
condition *unknown* (``None``): an alert neither fires nor resolves on missing data.

The metric names, documented for users:

===========================  ========================================================
``drift.share``              share of features that drifted (0..1)
``drift.dataset``            1 if the share is over ``monitor.drift.share``, else 0
``drift.feature.<name>``     1 if feature ``<name>`` drifted, else 0
``prediction_drift``         1 if the model's outputs drifted, else 0
``accuracy`` ``f1``          realised metrics on feedback-joined predictions
``mae`` ``rmse``             realised error for regressors
``estimated_accuracy``       label-free estimate from predicted probabilities
``concept_drift``            1 if the change detector fired on the error stream
``quality.missing_share``    share of missing input values
``quality.out_of_range_share``  share of numeric inputs outside the training range
``quality.unseen_share``     share of categorical inputs never seen in training
``error_rate``               failed requests / all requests in the window
``p50_ms`` ``p99_ms``        request latency percentiles
``requests``                 requests in the window
``extraction.score``         highest per-client model-extraction score (0..1)
``extraction.flagged_clients``  clients whose score is over the threshold
===========================  ========================================================
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import ConfigError

__all__ = ["KNOWN_METRICS", "PREFIX_METRICS", "Condition", "is_known", "parse_condition"]

KNOWN_METRICS: tuple[str, ...] = (
    "drift.share",
    "drift.dataset",
    "prediction_drift",
    "accuracy",
    "f1",
    "mae",
    "rmse",
    "estimated_accuracy",
    "concept_drift",
    "quality.missing_share",
    "quality.out_of_range_share",
    "quality.unseen_share",
    "error_rate",
    "p50_ms",
    "p99_ms",
    "requests",
    "extraction.score",
    "extraction.flagged_clients",
)
# Families with a user-chosen last part: ``drift.feature.income``.
PREFIX_METRICS: tuple[str, ...] = ("drift.feature.",)

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {"abs": abs, "min": min, "max": max}
_MAX_LENGTH = 500


def is_known(name: str) -> bool:
    return name in KNOWN_METRICS or any(
        name.startswith(p) and len(name) > len(p) for p in PREFIX_METRICS
    )


@dataclass(frozen=True)
class Condition:
    """A parsed, checked condition; ``evaluate`` it against a pass's metrics."""

    text: str
    tree: ast.expr
    names: tuple[str, ...]

    def evaluate(self, metrics: Mapping[str, float | None]) -> bool | None:
        """True or False, or None when a metric it reads has no value."""
        try:
            value = _Interpreter(metrics).visit(self.tree)
        except _Unknown:
            return None
        except ZeroDivisionError:
            return None
        return bool(value)


class _Unknown(Exception):
    """A metric the condition needs has no value in this pass."""


def parse_condition(text: str) -> Condition:
    """Parse and check ``text``; raise ConfigError naming what is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("an alert condition must be a non-empty expression")
    if len(text) > _MAX_LENGTH:
        raise ConfigError(f"alert condition is longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ConfigError(f"alert condition {text!r} is not valid: {exc.msg}") from None
    names: list[str] = []
    _check(tree, text, names)
    unknown = [n for n in names if not is_known(n)]
    if unknown:
        known = ", ".join([*KNOWN_METRICS, *(p + "<feature>" for p in PREFIX_METRICS)])
        raise ConfigError(
            f"alert condition {text!r} names unknown metric "
            f"{', '.join(map(repr, unknown))}; known metrics: {known}"
        )
    return Condition(text, tree, tuple(dict.fromkeys(names)))


def metric_name(node: ast.expr) -> str | None:
    """The dotted name a Name/Attribute/Subscript chain spells, or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = metric_name(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = metric_name(node.value)
        key = node.slice.value
        return f"{base}.{key}" if base and isinstance(key, str) else None
    return None


def _refuse(node: ast.AST, text: str, why: str) -> ConfigError:
    snippet = ast.get_source_segment(text.strip(), node) or type(node).__name__
    return ConfigError(
        f"alert condition {text!r}: {why} ({snippet!r}); use metric names, numbers, "
        "comparisons, and/or/not, + - * / and abs/min/max"
    )


def _check(node: ast.AST, text: str, names: list[str]) -> None:
    if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
        name = metric_name(node)
        if name is None or name in _FUNCTIONS:
            raise _refuse(node, text, "not a metric name")
        names.append(name)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _refuse(node, text, "only numbers are allowed as constants")
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _COMPARE for op in node.ops):
            raise _refuse(node, text, "only < <= > >= == != compare")
        for child in (node.left, *node.comparators):
            _check(child, text, names)
    elif isinstance(node, ast.BoolOp):
        for child in node.values:
            _check(child, text, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
        _check(node.operand, text, names)
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        _check(node.left, text, names)
        _check(node.right, text, names)
    elif isinstance(node, ast.Call):
        _check_call(node, text, names)
    else:
        raise _refuse(node, text, f"{type(node).__name__} is not allowed")


def _check_call(node: ast.Call, text: str, names: list[str]) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise _refuse(node, text, "only abs, min and max may be called")
    if node.keywords or not node.args or any(isinstance(a, ast.Starred) for a in node.args):
        raise _refuse(node, text, "functions take plain positional arguments")
    if node.func.id == "abs" and len(node.args) != 1:
        raise _refuse(node, text, "abs takes one argument")
    for arg in node.args:
        _check(arg, text, names)


class _Interpreter:
    """Walks a checked tree; only the node types ``_check`` allows can appear."""

    def __init__(self, metrics: Mapping[str, float | None]) -> None:
        self.metrics = metrics

    def visit(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            return self._metric(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BoolOp):
            values = [self.visit(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            return _ARITHMETIC[type(node.op)](self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)  # _check allows only named functions
            return _FUNCTIONS[node.func.id](*(self.visit(a) for a in node.args))
        raise TypeError(f"unexpected node {type(node).__name__}")  # _check forbids it

    def _metric(self, node: ast.expr) -> float:
        name = metric_name(node)
        value = self.metrics.get(name or "")
        if value is None or value != value:  # missing or NaN
            raise _Unknown(name)
        return float(value)

    def _compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

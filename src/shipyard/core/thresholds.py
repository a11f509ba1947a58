"""Threshold expressions such as ``">= 0.80"`` used by gates, analysis and alerts."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Threshold", "parse_threshold"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_PATTERN = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Threshold:
    """A comparison against a fixed number, e.g. ``>= 0.8``."""

    op: str
    value: float

    def passes(self, observed: float) -> bool:
        """True when ``observed`` satisfies the threshold; NaN never passes."""
        if math.isnan(observed):
            return False
        return _OPERATORS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def parse_threshold(text: str | float | int) -> Threshold:
    """Parse ``">= 0.8"``; a bare number means ``>=`` that number.

    Raises ValueError naming the text and the accepted form.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a threshold like '>= 0.8', got {text!r}")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"threshold must be a finite number, got {text!r}")
        return Threshold(">=", float(text))
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"expected a threshold like '>= 0.8' (operators: >=, <=, >, <, ==, !=), got {text!r}"
        )
    return Threshold(match.group(1), float(match.group(2)))

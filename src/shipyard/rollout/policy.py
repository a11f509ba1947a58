"""Canary analysis policy: the ``deploy.analysis`` keys, parsed and checked.

Kept apart from ``analysis.py`` (numpy and scipy) because ``shipyard.yaml`` validation
runs on every command: checking the keys must not import the statistics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.core.thresholds import parse_threshold

__all__ = ["VALID_KEYS", "CanaryPolicy", "validate_analysis"]

_QUANTILE_KEY = re.compile(r"^p(\d{1,2}(?:\.\d+)?)_ms$")
_MIN_WAIT_S = 60.0


# --- policy ---------------------------------------------------------------------------


def _duration_s(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        from shipyard.config import duration_seconds

        seconds = duration_seconds(str(value).strip())
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def _upper_bound(value: Any, low: float = 0.0, high: float = math.inf) -> float:
    """A number, or a threshold written ``<= x`` / ``< x``: the largest value allowed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        bound = float(value)
    elif not isinstance(value, str):
        raise ValueError(f"expected a number or a threshold like '<= 0.5', got {value!r}")
    else:
        threshold = parse_threshold(value)
        if threshold.op not in ("<=", "<"):
            raise ValueError(f"is an upper bound: write '<= x' or a number, got {value!r}")
        bound = threshold.value
    if not math.isfinite(bound) or not low <= bound <= high:
        raise ValueError(f"must be between {low:g} and {high:g}, got {value!r}")
    return bound


def _whole(value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"must be a whole number >= {low}, got {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _alpha(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 0.5:
        raise ValueError(f"must be a number in (0, 0.5], got {value!r}")
    return float(value)


def _kind(value: Any) -> str:
    if value not in ("auto", "labels", "numbers"):
        raise ValueError(f"must be 'auto', 'labels' or 'numbers', got {value!r}")
    return str(value)


_PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "min_requests": ("min_requests", lambda v: _whole(v, 0)),
    "min_labels": ("min_labels", lambda v: _whole(v, 1)),
    "min_samples": ("min_samples", lambda v: _whole(v, 5)),
    "min_duration": ("min_duration_s", _duration_s),
    "max_wait": ("max_wait_s", _duration_s),
    "look_interval": ("look_interval_s", _duration_s),
    "alpha": ("alpha", _alpha),
    "hold_alpha": ("hold_alpha", _alpha),
    "require_feedback": ("require_feedback", _flag),
    "error_rate": ("error_rate", lambda v: _upper_bound(v, 0, 1)),
    "max_error_increase": ("max_error_increase", lambda v: _upper_bound(v, 0, 1)),
    "max_latency_ratio": ("max_latency_ratio", lambda v: _upper_bound(v, 1)),
    "prediction_shift": ("prediction_shift", lambda v: _upper_bound(v, 0, 1)),
    "predictions": ("predictions", _kind),
    "accuracy_drop": ("accuracy_drop", lambda v: _upper_bound(v, 0, 1)),
    "f1_drop": ("f1_drop", lambda v: _upper_bound(v, 0, 1)),
    "max_mae_ratio": ("max_mae_ratio", lambda v: _upper_bound(v, 1)),
}
VALID_KEYS = (*_PARSERS, "p<q>_ms")


def _parse(analysis: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    fields: dict[str, Any] = {}
    quantiles: list[tuple[float, float]] = []
    problems: list[str] = []
    for key, value in (analysis or {}).items():
        quantile = _QUANTILE_KEY.match(str(key))
        try:
            if quantile and 0 < float(quantile.group(1)) < 100:
                quantiles.append((float(quantile.group(1)), _upper_bound(value)))
            elif key in _PARSERS:
                name, parse = _PARSERS[key]
                fields[name] = parse(value)
            else:
                problems.append(f"unknown key {key!r} (valid keys: {', '.join(VALID_KEYS)})")
        except (TypeError, ValueError) as exc:
            problems.append(f"{key} {exc}")
    fields["latency_bounds"] = tuple(sorted(quantiles))
    return fields, problems


def validate_analysis(analysis: Mapping[str, Any]) -> None:
    """Check ``deploy.analysis``; ValueError lists every bad key and the valid keys."""
    _, problems = _parse(analysis)
    if problems:
        raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class CanaryPolicy:
    """Thresholds of the canary analysis; see the module docstring for each key."""

    step_duration_s: float = 300.0
    min_requests: int = 100
    min_labels: int = 50
    min_samples: int = 20
    min_duration_s: float | None = None  # None: the step duration
    max_wait_s: float | None = None  # None: 3 x step duration, at least 60 s
    look_interval_s: float = 1.0
    alpha: float = 0.05
    hold_alpha: float = 0.05
    require_feedback: bool = False
    error_rate: float | None = None
    max_error_increase: float = 0.01
    latency_bounds: tuple[tuple[float, float], ...] = ()  # (percentile, max ms)
    max_latency_ratio: float = 1.25
    prediction_shift: float = 0.2
    predictions: str = "auto"
    accuracy_drop: float = 0.02
    f1_drop: float | None = None
    max_mae_ratio: float = 1.2

    @classmethod
    def from_config(cls, analysis: Mapping[str, Any], step_duration_s: float) -> CanaryPolicy:
        """Build from ``deploy.analysis``; ValueError names bad keys and values."""
        fields, problems = _parse(analysis)
        if problems:
            raise ValueError("; ".join(problems))
        policy = cls(step_duration_s=float(step_duration_s), **fields)
        if policy.wait_s < policy.duration_s:
            raise ValueError(
                f"max_wait ({policy.wait_s:g}s) must be at least the step's minimum "
                f"duration ({policy.duration_s:g}s)"
            )
        return policy

    @property
    def duration_s(self) -> float:
        """Minimum time in a step before it may promote."""
        return self.step_duration_s if self.min_duration_s is None else self.min_duration_s

    @property
    def wait_s(self) -> float:
        """Time after which an undecided step is rolled back."""
        if self.max_wait_s is not None:
            return self.max_wait_s
        return max(3 * self.duration_s, _MIN_WAIT_S)

    @property
    def looks(self) -> int:
        """How many looks a step can take: the Bonferroni divisor of distribution tests."""
        return max(1, math.ceil(self.wait_s / self.look_interval_s))

    @property
    def check_count(self) -> int:
        """Checks that can roll back: errors, latency, shift, quality, plus options."""
        optional = (self.error_rate is not None) + (self.f1_drop is not None)
        return 4 + optional + len(self.latency_bounds)

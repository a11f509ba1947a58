"""What every gate shares: the context it reads and the result it returns.

A gate is a function ``(context, config) -> GateResult``. It reads only the context
(data frames, the loaded candidate and baseline models, thresholds) and returns
numbers, a pass/fail decision and advice; the runner writes the reports. Gates never
print and never exit: ``shipyard check`` decides the exit code from the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FAILED", "PASSED", "SKIPPED", "CheckContext", "Gate", "GateResult"]

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class CheckContext:
    """Everything a gate may look at, loaded once per ``shipyard check``."""

    root: Path
    model: Any  # shipyard.formats.LoadedModel: the candidate
    model_ref: str  # path or MODEL:N, for the report
    train: Any | None  # pandas.DataFrame
    test: Any | None  # pandas.DataFrame (held-out)
    label: str | None
    features: list[str]  # model input columns, from the signature or the frame
    baseline: Any | None = None  # LoadedModel holding the compared alias, if any
    baseline_ref: str | None = None
    card: dict[str, Any] = field(default_factory=dict)
    required_card_fields: tuple[str, ...] = ()
    seed: int = 0
    # Values several gates need, computed once per check by whichever gate asks first
    # (predictions on the held-out set, the task type); see shipyard.checks.predictions.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class GateResult:
    """One gate's verdict and the evidence for it.

    ``numbers`` holds every figure (for report.json), ``tables`` named row lists for the
    reports, ``plots`` named PNG bytes rendered by the gate, ``advice`` what to do when
    it fails. ``status`` is passed, failed or skipped (with ``summary`` saying why).
    """

    name: str
    status: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    advice: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status != FAILED


Gate = Callable[[CheckContext, Any], GateResult]

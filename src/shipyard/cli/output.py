"""Formatting helpers shared by the commands: JSON for scripts, tables for people."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = ["emit_json", "info", "table"]


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit_json(value: Any) -> None:
    """Data to stdout as JSON (datetimes ISO 8601, dataclasses as objects)."""
    json.dump(value, sys.stdout, default=_default, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def info(message: str) -> None:
    """Messages for people go to stderr, so stdout stays data."""
    sys.stderr.write(message + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n")

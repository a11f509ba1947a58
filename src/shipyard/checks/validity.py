"""Vectorised checks of a frame against a schema, and the findings they produce.

The hot path is built to be cheap when data is clean: a range is checked with the
column's min and max (two reductions) and categories with its distinct values; a
per-row mask is built only for a column that fails, to count and sample the bad rows.
A plain validation library evaluates every rule on every row and assembles its
failure report row by row, which is what makes it slow on millions of rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["SAMPLE_ROWS", "Finding", "finding", "sample_rows", "validate_frame"]

SAMPLE_ROWS = 5


@dataclass
class Finding:
    """One problem in the data: which check, where, how many rows, and a few of them."""

    check: str  # missing, type, nullable, range, category, unique, expectation, ...
    frame: str  # train, test, or train/test
    column: str | None
    count: int
    share: float
    message: str
    failed: bool = True  # False: worth showing, not a reason to fail the gate
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None if np.isnan(value) else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def sample_rows(
    frame: Any, mask: Any, rng: np.random.Generator, k: int = SAMPLE_ROWS
) -> list[dict[str, Any]]:
    """Up to ``k`` of the rows where ``mask`` is true, chosen at random, with their
    row number in the file (``_row``, 0-based, header excluded)."""
    where = np.flatnonzero(np.asarray(mask, dtype=bool))
    if where.size > k:
        where = np.sort(rng.choice(where, size=k, replace=False))
    rows = []
    for position in where:
        record = frame.iloc[int(position)]
        row = {"_row": int(position)}
        row.update({str(c): _jsonable(v) for c, v in record.items()})
        rows.append(row)
    return rows


def finding(
    check: str,
    frame_name: str,
    column: str | None,
    mask: Any,
    message: str,
    frame: Any,
    rng: np.random.Generator,
    failed: bool = True,
) -> Finding:
    count = int(np.count_nonzero(mask))
    share = count / max(len(frame), 1)
    rows = sample_rows(frame, mask, rng)
    return Finding(check, frame_name, column, count, share, message, failed, rows)


def _coerced(column: Any, kind: str) -> tuple[Any, Any]:
    """(numeric values as float array, mask of values that are not numbers)."""
    import pandas as pd

    if column.dtype.kind in "iufb":
        return column.to_numpy(dtype=float, na_value=np.nan), None
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna().to_numpy() & column.notna().to_numpy()
    return numbers.to_numpy(dtype=float, na_value=np.nan), bad


def _type_problem(column: Any, expected: str, actual: str) -> str | None:
    if expected == actual:
        return None
    if expected == "float" and actual == "integer":
        return None  # whole numbers are valid floats
    if expected == "category" and actual == "string":
        return None  # a category column read back from CSV is text
    if expected == "string" and actual in ("category", "boolean"):
        return None
    return f"expected {expected}, found {actual} ({column.dtype})"


def _numeric_findings(
    name: str, column: Any, spec: dict[str, Any], ctx: tuple[str, Any, np.random.Generator]
) -> list[Finding]:
    frame_name, frame, rng = ctx
    values, bad = _coerced(column, spec["type"])
    found = []
    if bad is not None and bad.any():
        message = f"'{name}' has values that are not numbers (expected {spec['type']})"
        found.append(finding("type", frame_name, name, bad, message, frame, rng))
    if spec["type"] == "integer" and values.size:
        finite = values[np.isfinite(values)]
        if finite.size and not np.array_equal(finite, np.round(finite)):
            fractional = np.isfinite(values) & (values != np.round(values))
            message = f"'{name}' should hold whole numbers"
            found.append(finding("type", frame_name, name, fractional, message, frame, rng))
    found += _range_findings(name, values, spec, ctx)
    return found


def _range_findings(
    name: str, values: np.ndarray, spec: dict[str, Any], ctx: tuple[str, Any, np.random.Generator]
) -> list[Finding]:
    frame_name, frame, rng = ctx
    low = -np.inf if spec.get("min") is None else spec["min"]
    high = np.inf if spec.get("max") is None else spec["max"]
    finite = np.isfinite(values)
    if not finite.any():
        return []
    smallest = np.min(values, where=finite, initial=np.inf)
    if smallest >= low and np.max(values, where=finite, initial=-np.inf) <= high:
        return []
    with np.errstate(invalid="ignore"):
        outside = finite & ((values < low) | (values > high))
    message = f"'{name}' has values outside [{low:g}, {high:g}]"
    return [finding("range", frame_name, name, outside, message, frame, rng)]


def _category_findings(
    name: str, column: Any, spec: dict[str, Any], ctx: tuple[str, Any, np.random.Generator]
) -> list[Finding]:
    allowed = spec.get("categories")
    if allowed is None:
        return []
    frame_name, frame, rng = ctx
    present = column.dropna().unique()
    allowed_text = {str(a) for a in allowed}
    unknown = [v for v in present if v not in allowed and str(v) not in allowed_text]
    if not unknown:
        return []
    mask = column.isin(unknown).to_numpy()
    shown = ", ".join(repr(_jsonable(v)) for v in sorted(unknown, key=str)[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    message = f"'{name}' has values not seen in training: {shown}{more}"
    return [finding("category", frame_name, name, mask, message, frame, rng)]


def _type_findings(
    name: str, column: Any, spec: dict[str, Any], ctx: tuple[str, Any, np.random.Generator]
) -> list[Finding]:
    """Numeric columns are checked value by value (text in a number column flags just
    the rows that are not numbers); other types by the column's type."""
    from shipyard.checks.schema import kind_of

    actual = kind_of(column)
    if spec["type"] in ("integer", "float") and actual in ("integer", "float", "string"):
        return _numeric_findings(name, column, spec, ctx)
    problem = _type_problem(column, spec["type"], actual)
    if problem is None:
        return []
    frame_name, frame, rng = ctx
    message = f"'{name}' has the wrong type: {problem}"
    return [finding("type", frame_name, name, column.notna(), message, frame, rng)]


def _column_findings(
    name: str,
    column: Any,
    spec: dict[str, Any],
    missing: int,
    ctx: tuple[str, Any, np.random.Generator],
) -> list[Finding]:
    frame_name, frame, rng = ctx
    found = _type_findings(name, column, spec, ctx)
    found += _category_findings(name, column, spec, ctx)
    if missing and not spec.get("nullable", True):
        message = f"'{name}' may not be missing ({missing} missing values)"
        found.append(finding("nullable", frame_name, name, column.isna(), message, frame, rng))
    if spec.get("unique") and not column.is_unique:
        repeated = column.duplicated(keep=False).to_numpy() & column.notna().to_numpy()
        message = f"'{name}' should be unique (an identifier) but repeats"
        found.append(finding("unique", frame_name, name, repeated, message, frame, rng))
    return found


def validate_frame(
    frame: Any,
    schema: dict[str, Any],
    frame_name: str,
    missing: Any,
    rng: np.random.Generator,
) -> list[Finding]:
    """Every schema violation in ``frame`` (``missing``: its per-column NA counts)."""
    ctx = (frame_name, frame, rng)
    found: list[Finding] = []
    for name, spec in schema["columns"].items():
        if name in frame.columns:
            found += _column_findings(name, frame[name], spec, int(missing[name]), ctx)
    return found

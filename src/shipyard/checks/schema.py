"""A data schema inferred from the training data, kept as JSON.

For each column: its logical type (integer, float, boolean, string, category,
datetime), whether it may be missing, the range its values must lie in, the allowed
categories, and whether values must be unique. Stored in report.json and in
``.shipyard/checks/schema.json``; a copy of that file named in ``gates.data.schema``
is used as is instead of inferring one (edit it to tighten or loosen rules).

Inference is deliberately tolerant, so a fresh sample of the same population passes:

* a numeric range is the training range widened by half its width on each side,
  never below 0 if training never went below 0, and [0, 1] for shares. It catches
  unit mistakes, sign errors and sentinels like -999, not ordinary tail values;
* categories are inferred for text, category and boolean columns with at most
  ``MAX_CATEGORIES`` distinct values that repeat (a new value is then an error);
* a column is unique when it is whole numbers or text, has no gaps and no repeats in
  at least ``MIN_UNIQUE_ROWS`` rows (an identifier). Whole numbers that almost never
  repeat (over ``ID_SHARE`` distinct) get no range: new ids are not out of range;
* a column is nullable when training data has gaps in it or ``max_missing`` allows
  some (then the completeness check bounds how many).

``to_pandera`` translates a schema into a pandera DataFrameSchema with the same
rules: the reference the data gate's vectorised checks are tested against, and what
the benchmark compares them with.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import ConfigError

__all__ = [
    "KINDS",
    "MAX_CATEGORIES",
    "MIN_UNIQUE_ROWS",
    "infer_schema",
    "kind_of",
    "load_schema",
    "to_pandera",
]

SCHEMA_VERSION = 1
KINDS = ("integer", "float", "boolean", "string", "category", "datetime")
MAX_CATEGORIES = 50
MIN_UNIQUE_ROWS = 100
ID_SHARE = 0.95  # whole numbers with more distinct values than this share are ids


def kind_of(column: Any) -> str:
    """The logical type of a pandas Series."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        # CSV readers turn whole numbers with gaps into floats: still integers.
        values = column.to_numpy(dtype=float, na_value=np.nan)
        gaps = np.isnan(values)
        if not gaps.any():
            return "float"
        finite = values[~gaps & np.isfinite(values)]
        whole = finite.size > 0 and bool(np.all(finite == np.round(finite)))
        return "integer" if whole else "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _bounds(low: float, high: float, kind: str) -> tuple[float | None, float | None]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, None
    if low >= 0 and high <= 1 and kind == "float":
        return 0.0, 1.0
    pad = (high - low) / 2 or max(abs(low), 1.0) / 2
    lower, upper = low - pad, high + pad
    if low >= 0:
        lower = max(lower, 0.0)
    if kind == "integer":
        return float(math.floor(lower)), float(math.ceil(upper))
    return lower, upper


def _numeric(column: Any, kind: str) -> dict[str, Any]:
    values = column.to_numpy(dtype=float, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"min": None, "max": None, "observed": None}
    low, high = float(finite.min()), float(finite.max())
    lower, upper = _bounds(low, high, kind)
    return {"min": lower, "max": upper, "observed": [low, high]}


def _categories(column: Any, kind: str, label: bool) -> list[Any] | None:
    if kind not in ("string", "category", "boolean") and not (label and kind == "integer"):
        return None
    distinct = column.dropna().unique()
    repeated = len(distinct) <= max(1, column.notna().sum() // 2)
    if len(distinct) > MAX_CATEGORIES or not (repeated or label):
        return None
    return sorted((v.item() if hasattr(v, "item") else v for v in distinct), key=str)


def _identifier_like(column: Any) -> bool:
    """Whole numbers that (almost) never repeat: an id, whose range means nothing."""
    present = column.dropna()
    return len(present) >= MIN_UNIQUE_ROWS and present.nunique() > ID_SHARE * len(present)


def _column(column: Any, *, label: bool, allow_missing: bool) -> dict[str, Any]:
    kind = kind_of(column)
    missing = int(column.isna().sum())
    spec: dict[str, Any] = {
        "type": kind,
        "dtype": str(column.dtype),
        "nullable": bool(missing) or allow_missing,
        "unique": False,
        "categories": _categories(column, kind, label),
    }
    if kind in ("integer", "float"):
        spec.update(_numeric(column, kind))
    if kind in ("integer", "string") and not missing and len(column) >= MIN_UNIQUE_ROWS:
        spec["unique"] = bool(column.is_unique) and spec["categories"] is None
    if kind == "integer" and _identifier_like(column):
        spec.update(min=None, max=None)  # new identifiers are not out of range
    return spec


def infer_schema(
    frame: Any, *, label: str | None = None, allow_missing: bool = False, source: str = ""
) -> dict[str, Any]:
    """Infer the schema of ``frame`` (see the module doc for the rules)."""
    columns = {
        str(name): _column(frame[name], label=name == label, allow_missing=allow_missing)
        for name in frame.columns
    }
    return {
        "version": SCHEMA_VERSION,
        "source": source,
        "rows": len(frame),
        "label": label,
        "columns": columns,
    }


def _check_column(name: str, spec: Any) -> list[tuple[str, str]]:
    where = f"columns.{name}"
    if not isinstance(spec, dict):
        return [(where, "must be a mapping with at least 'type'")]
    problems = []
    if spec.get("type") not in KINDS:
        problems.append((f"{where}.type", f"must be one of {', '.join(KINDS)}"))
    for key in ("min", "max"):
        if spec.get(key) is not None and not isinstance(spec[key], int | float):
            problems.append((f"{where}.{key}", "must be a number or null"))
    if spec.get("categories") is not None and not isinstance(spec["categories"], list):
        problems.append((f"{where}.categories", "must be a list or null"))
    return problems


def load_schema(path: Path) -> dict[str, Any]:
    """Read a schema file written by Shipyard (possibly edited); ConfigError if bad."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"gates.data.schema: '{path}' does not exist",
            hint="use `schema: auto`, or copy .shipyard/checks/schema.json (written by "
            "`shipyard check`) to that path",
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"gates.data.schema: cannot read '{path}': {exc}") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), dict):
        raise ConfigError(f"gates.data.schema: '{path}' has no 'columns' mapping")
    problems = [p for n, s in schema["columns"].items() for p in _check_column(n, s)]
    if problems:
        raise ConfigError(f"gates.data.schema: '{path}' is invalid:", problems=problems)
    return schema


_PANDERA_TYPES = {
    "float": "float64",
    "boolean": "bool",
    "string": "str",
    "datetime": "datetime64[ns]",
}


def _pandera_column(spec: dict[str, Any]) -> Any:
    import pandera.pandas as pa

    checks = []
    if spec.get("min") is not None or spec.get("max") is not None:
        low = -math.inf if spec.get("min") is None else spec["min"]
        high = math.inf if spec.get("max") is None else spec["max"]
        checks.append(pa.Check.in_range(low, high))
    if spec.get("categories") is not None:
        checks.append(pa.Check.isin(spec["categories"]))
    dtype = _PANDERA_TYPES.get(spec["type"])
    if spec["type"] == "integer":
        dtype = "Int64" if spec.get("nullable") else "int64"
    return pa.Column(
        dtype,
        checks=checks,
        nullable=bool(spec.get("nullable")),
        unique=bool(spec.get("unique")),
        coerce=spec["type"] == "integer",  # CSV reads whole numbers with gaps as floats
        required=True,
    )


def to_pandera(schema: dict[str, Any], *, duplicates: bool = False) -> Any:
    """A pandera DataFrameSchema with the same rules (``duplicates``: also refuse
    repeated rows, as the data gate's duplicate check does)."""
    import pandera.pandas as pa

    columns = {
        name: _pandera_column(spec)
        for name, spec in schema["columns"].items()
        if spec["type"] != "category"
    }
    columns.update(
        {
            name: pa.Column(
                "category",
                checks=[pa.Check.isin(spec["categories"])] if spec.get("categories") else [],
                nullable=bool(spec.get("nullable")),
            )
            for name, spec in schema["columns"].items()
            if spec["type"] == "category"
        }
    )
    unique = list(schema["columns"]) if duplicates else None
    return pa.DataFrameSchema(columns, unique=unique, report_duplicates="all")

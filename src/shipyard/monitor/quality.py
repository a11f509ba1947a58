"""Data quality on live traffic: the data gate's schema checked on the prediction log.

The schema is the one the data gate stored (``.shipyard/checks/schema.json``, or the
file named in ``gates.data.schema``), or one inferred from a reference frame with the
gate's own rules (``shipyard.checks.schema.infer_schema``); the checks are the gate's
vectorised validators (``shipyard.checks.validity.validate_frame``), so a row that
the gate would refuse in training data is counted here too. Per column the report
gives the missing share, the share outside the schema's range, and the categories
never seen in training with their share. Uniqueness is not checked: live traffic
repeats values (and identifiers) by nature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.checks.schema import infer_schema, load_schema
from shipyard.checks.validity import Finding, validate_frame

__all__ = ["ColumnQuality", "QualityReport", "check_live_quality", "schema_from"]

_SHOWN_CATEGORIES = 20


@dataclass
class ColumnQuality:
    name: str
    missing_share: float
    out_of_range_share: float = 0.0
    unseen_share: float = 0.0
    unseen_categories: list[Any] = field(default_factory=list)
    type_problem_share: float = 0.0


@dataclass
class QualityReport:
    rows: int
    columns: dict[str, ColumnQuality]
    missing_columns: list[str]
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        """No finding and no expected column absent."""
        return not self.findings and not self.missing_columns

    def worst(self, attribute: str) -> float:
        """The largest share of one kind over all columns (e.g. ``missing_share``)."""
        return max((getattr(c, attribute) for c in self.columns.values()), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "missing_columns": self.missing_columns,
            "columns": {name: asdict(column) for name, column in self.columns.items()},
            "findings": [finding.to_dict() for finding in self.findings],
        }


def _pandas(frame: Any) -> Any:
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):  # polars, pyarrow
        return frame.to_pandas()
    raise TypeError(f"expected a pandas or polars DataFrame or a pyarrow Table, got {frame!r}")


def schema_from(source: Any) -> dict[str, Any]:
    """A schema dict from a stored schema (dict), a schema file path, or a reference
    frame (inferred with the data gate's rules)."""
    if isinstance(source, Mapping):
        if not isinstance(source.get("columns"), Mapping):
            raise ValueError("a schema needs a 'columns' mapping (as in schema.json)")
        return dict(source)
    if isinstance(source, str | Path):
        return load_schema(Path(source))
    return infer_schema(_pandas(source), source="reference")


def _live_rules(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without rules that do not apply to traffic (uniqueness, and
    nullability: missing values are measured as a share instead)."""
    columns = {
        name: {**spec, "unique": False, "nullable": True}
        for name, spec in schema["columns"].items()
    }
    return {**schema, "columns": columns}


def _unseen(column: Any, allowed: list[Any] | None) -> list[Any]:
    if allowed is None:
        return []
    allowed_text = {str(a) for a in allowed}
    present = column.dropna().unique()
    unknown = [v for v in present if v not in allowed and str(v) not in allowed_text]
    return sorted((v.item() if hasattr(v, "item") else v for v in unknown), key=str)


def check_live_quality(
    current: Any,
    schema: Any,
    *,
    prefix: str = "",
    label: str | None = None,
    seed: int = 0,
) -> QualityReport:
    """Check ``current`` (pandas, polars or pyarrow) against ``schema`` (see
    ``schema_from``). ``prefix``: the log's name for column ``x`` is ``prefix + x``
    (``in_`` in the prediction log). The label column, absent from traffic, is skipped.
    """
    frame = _pandas(current)
    rules = _live_rules(schema_from(schema))
    label = label if label is not None else rules.get("label")
    expected = [name for name in rules["columns"] if name != label]
    renamed = {prefix + name: name for name in expected if prefix + name in frame.columns}
    frame = frame[list(renamed)].rename(columns=renamed)
    missing_columns = [name for name in expected if name not in frame.columns]
    counts = frame.isna().sum()
    findings = validate_frame(frame, rules, "live", counts, np.random.default_rng(seed))
    rows = max(len(frame), 1)
    columns = {
        name: ColumnQuality(name, float(counts[name]) / rows)
        for name in expected
        if name in frame.columns
    }
    for item in findings:
        column = columns.get(str(item.column))
        if column is None:
            continue
        if item.check == "range":
            column.out_of_range_share = item.share
        elif item.check == "category":
            column.unseen_share = item.share
            spec = rules["columns"][column.name]
            column.unseen_categories = _unseen(frame[column.name], spec.get("categories"))[
                :_SHOWN_CATEGORIES
            ]
        elif item.check == "type":
            column.type_problem_share = item.share
    return QualityReport(len(frame), columns, missing_columns, findings)

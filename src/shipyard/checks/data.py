"""The data-quality gate: completeness, validity and consistency of train and test.

* completeness: the share of missing values per column, against ``max_missing``;
* validity: types, ranges, categories, uniqueness and nullability from the schema
  (inferred from the training data, or the file named in ``gates.data.schema``), and
  the rules in ``gates.data.expectations`` (see shipyard.checks.expectations);
* consistency: train and test agree on columns and types, duplicate rows (against
  ``max_duplicates``), leakage (rows in both), label shift (see
  shipyard.checks.consistency).

Every finding keeps a few sampled failing rows for the report. With an inferred
schema only the test data is validated (the training data defines the rules); with a
schema file both are. The schema goes into the result (``numbers["schema"]``); the
runner stores it under ``.shipyard/checks/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipyard.checks import consistency
from shipyard.checks.base import FAILED, PASSED, CheckContext, GateResult
from shipyard.checks.expectations import check_expectation, parse_expectations
from shipyard.checks.predictions import task_of_labels
from shipyard.checks.schema import infer_schema, load_schema
from shipyard.checks.validity import Finding, finding, validate_frame

__all__ = ["check_data", "data_gate", "schema_for"]


def schema_for(ctx: CheckContext, cfg: Any) -> tuple[dict[str, Any], bool]:
    """(schema, inferred?): the file named in ``cfg.schema_``, or one inferred from
    the training data (or the test data when there is no training data)."""
    if cfg.schema_ != "auto":
        return load_schema(Path(ctx.root) / cfg.schema_), False
    frame = ctx.train if ctx.train is not None else ctx.test
    source = (cfg.train if ctx.train is not None else cfg.test) or ""
    allow = bool(cfg.max_missing)
    return infer_schema(frame, label=ctx.label, allow_missing=allow, source=source), True


def _frames(ctx: CheckContext) -> dict[str, Any]:
    return {n: f for n, f in (("train", ctx.train), ("test", ctx.test)) if f is not None}


def _completeness(
    frames: dict[str, Any],
    missing: dict[str, Any],
    limit: float | None,
    rng: np.random.Generator,
) -> list[Finding]:
    """Columns with more missing values than ``limit`` (failures), or with any missing
    values when no limit is set (warnings)."""
    found = []
    for name, frame in frames.items():
        shares = missing[name] / max(len(frame), 1)
        for column in shares.index[shares > (limit or 0)]:
            share = float(shares[column])
            bound = "" if limit is None else f" (max {limit:.2%})"
            message = f"'{column}' is {share:.2%} missing in {name}{bound}"
            mask = frame[column].isna().to_numpy()
            failed = limit is not None
            found.append(finding("missing", name, str(column), mask, message, frame, rng, failed))
    return found


def _validity(
    ctx: CheckContext,
    cfg: Any,
    frames: dict[str, Any],
    missing: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[list[Finding], dict[str, Any], bool]:
    schema, inferred = schema_for(ctx, cfg)
    checked = {n: f for n, f in frames.items() if not (inferred and n == "train")}
    found = [
        item
        for name, frame in checked.items()
        for item in validate_frame(frame, schema, name, missing[name], rng)
    ]
    for expectation in parse_expectations(list(cfg.expectations)):
        for name, frame in frames.items():
            result = check_expectation(expectation, frame, name, rng)
            found += [result] if result else []
    return found, schema, inferred


def _consistency(
    ctx: CheckContext, cfg: Any, frames: dict[str, Any], rng: np.random.Generator
) -> tuple[list[Finding], dict[str, Any]]:
    hashes = consistency.aligned_hashes(frames, ctx.label)
    found, dupes = consistency.duplicates(frames, hashes, cfg.max_duplicates, rng)
    numbers: dict[str, Any] = {"duplicates": dupes}
    if ctx.train is None or ctx.test is None:
        return found, numbers
    found += consistency.schema_agreement(ctx.train, ctx.test)
    leaked, numbers["leakage"] = consistency.leakage(ctx.test, hashes, cfg.leakage, rng)
    found += leaked
    label = ctx.label
    if label is not None and label in ctx.train.columns and label in ctx.test.columns:
        task = task_of_labels(ctx.train[label])
        shifted, numbers["label_shift"] = consistency.label_shift(ctx.train, ctx.test, label, task)
        found += shifted
    return found, numbers


def _summary(frames: dict[str, Any], found: list[Finding]) -> str:
    failed = [f for f in found if f.failed]
    if failed:
        shown = "; ".join(f.message for f in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        return f"{len(failed)} problem(s): {shown}{more}"
    sizes = ", ".join(f"{n} {len(f)} rows" for n, f in frames.items())
    warnings = len(found)
    columns = len(next(iter(frames.values())).columns)
    tail = f"; {warnings} warning(s)" if warnings else ": no problems"
    return f"{sizes}, {columns} columns{tail}"


def _advice(found: list[Finding]) -> str:
    checks = sorted({f.check for f in found if f.failed})
    tips = {
        "missing": "fill or drop the gaps upstream (prepare stage) or raise max_missing",
        "type": "fix the parsing of the flagged values (see the sampled rows)",
        "range": "look for unit changes, sign errors or sentinels like -999",
        "category": "map new categories upstream or retrain with them",
        "unique": "remove repeated identifiers",
        "nullable": "fill the gaps or mark the column nullable in the schema file",
        "expectation": "fix the rows that break the rule or revise the rule",
        "schema": "make train and test come from the same preparation code",
        "duplicates": "drop duplicate rows in the prepare stage",
        "leakage": "split before deduplicating/augmenting so no row is in both sets",
        "label_shift": "split with stratification on the label",
    }
    return "Data problems: " + "; ".join(f"{c}: {tips.get(c, 'see the findings')}" for c in checks)


def data_gate(ctx: CheckContext, cfg: Any) -> GateResult:
    """Check the training and held-out data (``cfg``: a DataGate)."""
    rng = np.random.default_rng(ctx.seed)
    frames = _frames(ctx)
    missing = {name: frame.isna().sum() for name, frame in frames.items()}
    found = _completeness(frames, missing, cfg.max_missing, rng)
    valid, schema, inferred = _validity(ctx, cfg, frames, missing, rng)
    consistent, numbers = _consistency(ctx, cfg, frames, rng)
    found += valid + consistent
    numbers.update(
        {
            "rows": {n: len(f) for n, f in frames.items()},
            "columns": len(schema["columns"]),
            "schema": schema,
            "schema_source": "inferred" if inferred else cfg.schema_,
            "max_missing": cfg.max_missing,
            "max_duplicates": cfg.max_duplicates,
            "missing": {
                str(c): {
                    n: float(missing[n][c]) / max(len(frames[n]), 1)
                    for n in frames
                    if c in missing[n]
                }
                for c in schema["columns"]
            },
            "findings": [f.to_dict() for f in found],
        }
    )
    tables = {"findings": [{k: v for k, v in f.to_dict().items() if k != "rows"} for f in found]}
    status = FAILED if any(f.failed for f in found) else PASSED
    advice = _advice(found) if status == FAILED else ""
    return GateResult("data", status, _summary(frames, found), numbers, tables, advice=advice)


def _as_pandas(frame: Any) -> Any:
    """pandas as is; a polars (or any Arrow-exporting) frame converted once."""
    if frame is None or hasattr(frame, "iloc"):
        return frame
    if hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    raise TypeError(f"expected a pandas or polars DataFrame, got {type(frame).__name__}")


def check_data(
    train: Any,
    test: Any | None = None,
    *,
    label: str | None = None,
    seed: int = 0,
    **options: Any,
) -> GateResult:
    """The data-quality gate on frames from Python (pandas or polars).

    ``options`` are the keys of ``gates.data`` (``max_missing``, ``max_duplicates``,
    ``leakage``, ``expectations``, ``schema``…). Returns the same GateResult that
    ``shipyard check`` reports.
    """
    from shipyard.config import DataGate

    train, test = _as_pandas(train), _as_pandas(test)
    features = [c for c in (train if train is not None else test).columns if c != label]
    ctx = CheckContext(
        root=Path.cwd(),
        model=None,
        model_ref="(frames)",
        train=train,
        test=test,
        label=label,
        features=features,
        seed=seed,
    )
    return data_gate(ctx, DataGate(label=label, **options))

"""Expectations: data rules written in ``gates.data.expectations``.

Each entry is a mapping with exactly one rule and a few optional keys::

    expectations:
      - {column: purpose, in: [car, home, education, business]}   # allowed values
      - {column: income, between: [0, 10000000]}                  # inclusive; null = open
      - {column: email, regex: '^[^@\\s]+@[^@\\s]+$'}              # whole value must match
      - {column: applicant_id, unique: true}                       # no repeats
      - {column: income, not_null: true}                           # no gaps
      - {name: affordable, expr: "amount <= income * 20", mostly: 0.99}

``expr`` is a pandas ``DataFrame.eval`` expression over the columns that must be true
for each row (it runs with the same trust as the stage commands in shipyard.yaml).
Optional keys: ``name`` (shown in the report), ``mostly`` (the share of checked rows
that must pass, default 1.0) and ``frames`` (``[train, test]`` by default). Missing
values are left to the completeness check, except by ``not_null``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.checks.validity import Finding, finding
from shipyard.errors import ConfigError

__all__ = ["RULES", "Expectation", "check_expectation", "parse_expectations"]

RULES = ("in", "between", "regex", "unique", "not_null", "expr")
_OPTIONAL = ("column", "name", "mostly", "frames")
_FRAMES = ("train", "test")
_FORMAT = (
    "each expectation is a mapping with one rule (in, between, regex, unique, not_null, "
    "expr), 'column' (except for expr) and optionally name, mostly, frames"
)


@dataclass(frozen=True)
class Expectation:
    name: str
    rule: str
    argument: Any
    column: str | None = None
    mostly: float = 1.0
    frames: tuple[str, ...] = _FRAMES


def _problem(index: int, message: str) -> ConfigError:
    return ConfigError(
        f"gates.data.expectations[{index}]: {message}",
        hint=_FORMAT + " (see `shipyard check --help`)",
    )


def _argument(index: int, rule: str, value: Any) -> Any:
    if rule == "in" and not isinstance(value, list):
        raise _problem(index, "'in' needs a list of allowed values")
    if rule == "between":
        ok = isinstance(value, list) and len(value) == 2
        if not ok or not all(v is None or isinstance(v, int | float) for v in value):
            raise _problem(index, "'between' needs [low, high] (numbers; null for no bound)")
    if rule == "regex":
        try:
            re.compile(str(value))
        except re.error as exc:
            raise _problem(index, f"'regex' {value!r} is not a valid pattern: {exc}") from None
    if rule in ("unique", "not_null") and value is not True:
        raise _problem(index, f"'{rule}' takes the value true")
    if rule == "expr" and not (isinstance(value, str) and value.strip()):
        raise _problem(index, "'expr' needs an expression such as 'amount <= income * 20'")
    return value


def _parse_one(index: int, entry: Any) -> Expectation:
    if not isinstance(entry, dict):
        raise _problem(index, f"expected a mapping, got {entry!r}")
    rules = [k for k in entry if k in RULES]
    unknown = [k for k in entry if k not in RULES and k not in _OPTIONAL]
    if unknown:
        raise _problem(index, f"unknown key(s) {unknown}")
    if len(rules) != 1:
        raise _problem(index, f"needs exactly one rule, found {rules or 'none'}")
    rule = rules[0]
    column = entry.get("column")
    if rule != "expr" and not isinstance(column, str):
        raise _problem(index, f"rule '{rule}' needs 'column'")
    mostly = entry.get("mostly", 1.0)
    if not isinstance(mostly, int | float) or not 0 < mostly <= 1:
        raise _problem(index, f"'mostly' must be a share in (0, 1], got {mostly!r}")
    frames = tuple(entry.get("frames", _FRAMES))
    if not frames or any(f not in _FRAMES for f in frames):
        raise _problem(index, f"'frames' must list train and/or test, got {list(frames)}")
    argument = _argument(index, rule, entry[rule])
    name = str(entry.get("name") or f"{column or 'row'} {rule}")
    return Expectation(name, rule, argument, column, float(mostly), frames)


def parse_expectations(entries: list[dict[str, Any]]) -> list[Expectation]:
    """Validate the config entries; ConfigError naming the entry and what is wrong."""
    return [_parse_one(i, entry) for i, entry in enumerate(entries)]


def _violations(expectation: Expectation, frame: Any) -> np.ndarray:
    """Mask of rows that break the rule."""
    if expectation.rule == "expr":
        return ~_evaluate(expectation, frame)
    column = frame[expectation.column]
    present = column.notna().to_numpy()
    rule, argument = expectation.rule, expectation.argument
    if rule == "not_null":
        return ~present
    if rule == "unique":
        return column.duplicated(keep=False).to_numpy() & present
    if rule == "in":
        return ~column.isin(argument).to_numpy() & present
    if rule == "between":
        import pandas as pd

        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        low = -np.inf if argument[0] is None else argument[0]
        high = np.inf if argument[1] is None else argument[1]
        with np.errstate(invalid="ignore"):
            return present & ~((values >= low) & (values <= high))
    matched = column.astype(str).str.fullmatch(str(argument)).to_numpy(dtype=bool, na_value=False)
    return ~matched & present


def _evaluate(expectation: Expectation, frame: Any) -> np.ndarray:
    try:
        result = frame.eval(expectation.argument)
    except Exception as exc:  # pandas raises many kinds for a bad expression
        raise ConfigError(
            f"gates.data.expectations '{expectation.name}': cannot evaluate "
            f"{expectation.argument!r}: {type(exc).__name__}: {exc}",
            hint=f"use column names of the data: {', '.join(map(str, frame.columns))}",
        ) from None
    values = np.asarray(result)
    if values.dtype != bool or values.shape != (len(frame),):
        raise ConfigError(
            f"gates.data.expectations '{expectation.name}': {expectation.argument!r} must "
            "give true/false for each row",
        )
    return values


def check_expectation(
    expectation: Expectation, frame: Any, frame_name: str, rng: np.random.Generator
) -> Finding | None:
    """The finding for this expectation on this frame, or None when it holds."""
    if frame_name not in expectation.frames:
        return None
    if expectation.column is not None and expectation.column not in frame.columns:
        raise ConfigError(
            f"gates.data.expectations '{expectation.name}': column {expectation.column!r} "
            f"is not in the {frame_name} data",
            hint=f"columns: {', '.join(map(str, frame.columns))}",
        )
    broken = _violations(expectation, frame)
    count = int(broken.sum())
    if count == 0:
        return None
    passing = 1 - count / max(len(frame), 1)
    message = (
        f"expectation '{expectation.name}' fails for {count} row(s) "
        f"({passing:.2%} pass, needs {expectation.mostly:.2%})"
    )
    failed = passing < expectation.mostly
    return finding(
        "expectation", frame_name, expectation.column, broken, message, frame, rng, failed
    )

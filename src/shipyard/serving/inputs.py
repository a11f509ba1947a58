"""Request bodies: strict JSON decoding and the payload shapes clients bring.

Accepted shapes for ``/v1/models/{m}/predict``: one record (``{"age": 30, …}``), a
list of records, ``{"instances": [...]}`` (records or rows), ``{"inputs": ...}``
(records, rows or a mapping of columns), and MLflow's ``{"dataframe_split": {...}}`` /
``{"dataframe_records": [...]}``. Every problem becomes BadRequest with a message that
names the field; nothing here raises anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["BadRequest", "decode_json", "rows_from_payload", "validate_rows"]


class BadRequest(Exception):
    """A client error: ``status`` (400, 413, 415, 422) and a message naming the problem."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"duplicate key {key!r} in the JSON body")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise BadRequest(f"{name} is not a valid JSON number; send finite numbers only")


def decode_json(body: bytes) -> Any:
    """Strict JSON: UTF-8 only (no BOM, no UTF-16), no NaN/Infinity, no duplicate keys."""
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise BadRequest(f"unreadable JSON value: {exc}") from None


def _from_columns(columns: dict[str, Any]) -> list[dict[str, Any]]:
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if -1 in lengths:
        return [columns]  # a single record whose values are scalars
    if len(lengths) != 1:
        raise BadRequest("columns in 'inputs' have different lengths")
    (count,) = lengths
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def rows_from_payload(payload: Any) -> list[Any]:
    """The list of rows (dicts or lists) in any accepted payload shape."""
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object or a list of records")
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            raise BadRequest("'dataframe_split' needs 'columns' and 'data' lists")
        columns = split.get("columns")
        if columns is None:
            return split["data"]
        return [_zip_row(columns, row) for row in split["data"]]
    for key in ("dataframe_records", "instances", "records"):
        if key in payload:
            if not isinstance(payload[key], list):
                raise BadRequest(f"'{key}' must be a list")
            return payload[key]
    if "inputs" in payload:
        inputs = payload["inputs"]
        if isinstance(inputs, dict):
            return _from_columns(inputs)
        if isinstance(inputs, list):
            return inputs
        raise BadRequest("'inputs' must be a list of rows or a mapping of columns")
    return [payload]


def _zip_row(columns: Any, row: Any) -> dict[str, Any]:
    if not isinstance(row, list) or not isinstance(columns, list) or len(row) != len(columns):
        raise BadRequest("each row of 'dataframe_split.data' must match 'columns'")
    return dict(zip(columns, row, strict=True))


def _check_value(name: str, value: Any, kind: str | None, index: int) -> Any:
    where = f"row {index}, field '{name}'"
    if isinstance(value, bool):
        raise BadRequest(f"{where}: booleans are not accepted, got {value!r}", 422)
    if isinstance(value, int | float):
        if kind == "string":
            raise BadRequest(f"{where}: expected a string, got a number", 422)
        if not math.isfinite(value) or abs(value) > 1e300:
            raise BadRequest(f"{where}: numbers must be finite, got {value!r}", 422)
        return value
    if isinstance(value, str):
        if kind == "number":
            raise BadRequest(f"{where}: expected a number, got the string {value[:40]!r}", 422)
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise BadRequest(f"{where}: the string holds NUL or unpaired surrogate characters", 422)
        return value
    if value is None:
        raise BadRequest(f"{where}: missing value (null)", 422)
    raise BadRequest(f"{where}: expected a number or a string, got {type(value).__name__}", 422)


def validate_rows(
    rows: Sequence[Any], inputs: Sequence[str], types: dict[str, str], max_rows: int
) -> list[list[Any]]:
    """Check every row against the signature; return values in signature order."""
    if not rows:
        raise BadRequest("the batch is empty; send at least one record", 422)
    if len(rows) > max_rows:
        raise BadRequest(f"the batch has {len(rows)} rows; the limit is {max_rows}", 413)
    expected = list(inputs)
    wanted = set(expected)
    result = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            missing = [n for n in expected if n not in row]
            extra = [n for n in row if n not in wanted]
            if missing or extra:
                parts = [
                    f"missing {missing}" if missing else "",
                    f"unknown {extra}" if extra else "",
                ]
                raise BadRequest(
                    f"row {index}: {' and '.join(p for p in parts if p)} field(s); "
                    f"expected {expected}",
                    422,
                )
            values = [row[n] for n in expected]
        elif isinstance(row, list):
            if len(row) != len(expected):
                raise BadRequest(
                    f"row {index} has {len(row)} values; the model takes {len(expected)} "
                    f"({expected})",
                    422,
                )
            values = row
        else:
            raise BadRequest(
                f"row {index} must be an object or a list, got {type(row).__name__}", 422
            )
        result.append(
            [_check_value(n, v, types.get(n), index) for n, v in zip(expected, values, strict=True)]
        )
    return result

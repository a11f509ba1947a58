"""Consistency between the training and the held-out data.

Same columns and types; duplicate rows within each (by a 64-bit hash of the row, so
one vectorised pass instead of pandas' column-by-column ``duplicated``); rows present
in both (leakage: the held-out score would be inflated); and a shift of the label
distribution (total variation distance with a chi-square test for classes, the
Kolmogorov-Smirnov statistic for a quantity).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.checks.schema import kind_of
from shipyard.checks.validity import Finding, finding

__all__ = [
    "LABEL_SHIFT_DISTANCE",
    "LABEL_SHIFT_P",
    "aligned_hashes",
    "column_hashes",
    "duplicates",
    "label_shift",
    "leakage",
    "row_hashes",
    "schema_agreement",
]

LABEL_SHIFT_DISTANCE = 0.1  # distance that counts as a shift ...
LABEL_SHIFT_P = 0.001  # ... when it is also this unlikely under "same distribution"
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) to mix columns
_NAN_BITS = np.uint64(0x7FF8000000000000)


def _mix(bits: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads each 64-bit value over all 64 bits."""
    z = bits + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _value_hashes(column: Any) -> np.ndarray:
    """A 64-bit hash per value. Plain numbers hash their bits (0.0 and -0.0 alike,
    every NaN alike); text and everything else goes through pandas' hashing."""
    import pandas as pd

    dtype = column.dtype
    if not isinstance(dtype, np.dtype) or dtype.kind not in "iufbmM":
        return pd.util.hash_pandas_object(column, index=False).to_numpy()
    values = column.to_numpy()
    if dtype.kind == "f":
        values = values.astype(np.float64) + 0.0
        bits = values.view(np.uint64).copy()
        bits[np.isnan(values)] = _NAN_BITS
    else:
        bits = values.view(np.int64) if dtype.kind in "mM" else values.astype(np.int64)
        bits = bits.view(np.uint64)
    return _mix(bits)


def column_hashes(frame: Any) -> dict[str, np.ndarray]:
    """A 64-bit hash of each value, per column (vectorised)."""
    return {str(c): _value_hashes(frame[c]) for c in frame.columns}


def row_hashes(columns: list[np.ndarray]) -> np.ndarray:
    """Combine per-column hashes into one hash per row (order matters)."""
    combined = np.zeros(len(columns[0]) if columns else 0, dtype=np.uint64)
    for hashes in columns:
        combined = combined * _MIX + hashes  # wraps modulo 2**64, as intended
    return combined


def schema_agreement(train: Any, test: Any) -> list[Finding]:
    """Columns present in only one frame, and columns whose type differs."""
    found = []
    only_train = [str(c) for c in train.columns if c not in test.columns]
    only_test = [str(c) for c in test.columns if c not in train.columns]
    for columns, where in ((only_train, "test lacks"), (only_test, "test has extra")):
        if columns:
            message = f"train and test differ: {where} column(s) {columns}"
            found.append(Finding("schema", "train/test", None, len(test), 1.0, message))
    for column in (c for c in train.columns if c in test.columns):
        kinds = (kind_of(train[column]), kind_of(test[column]))
        if kinds[0] != kinds[1] and set(kinds) != {"integer", "float"}:
            message = f"'{column}' is {kinds[0]} in train but {kinds[1]} in test"
            found.append(Finding("schema", "train/test", str(column), len(test), 1.0, message))
    return found


def aligned_hashes(frames: dict[str, Any], label: str | None) -> dict[str, dict[str, np.ndarray]]:
    """Per frame, row hashes over the columns all frames share: ``rows`` (every shared
    column, for duplicates) and ``inputs`` (all but the label, for leakage: the same
    input in both sets is a leak whatever its label). Numbers are hashed as floats
    where frames disagree on int/float (a gap turns a CSV int column into floats)."""
    first = next(iter(frames.values()))
    shared = [c for c in first.columns if all(c in f.columns for f in frames.values())]
    cast = [
        c
        for c in shared
        if len({str(f[c].dtype) for f in frames.values()}) > 1
        and all(f[c].dtype.kind in "iufb" for f in frames.values())
    ]
    out = {}
    for name, frame in frames.items():
        part = frame[shared] if len(shared) < len(frame.columns) else frame
        if cast:
            part = part.astype(dict.fromkeys(cast, "float64"))
        per_column = column_hashes(part)
        inputs = row_hashes([h for c, h in per_column.items() if c != label])
        rows = row_hashes([inputs, per_column[label]]) if label in per_column else inputs
        out[name] = {"rows": rows, "inputs": inputs}
    return out


def duplicates(
    frames: dict[str, Any],
    hashes: dict[str, dict[str, np.ndarray]],
    limit: float | None,
    rng: np.random.Generator,
) -> tuple[list[Finding], dict[str, Any]]:
    """Rows that repeat an earlier row; a failure above ``limit``, else a warning."""
    import pandas as pd

    found, numbers = [], {}
    for name, frame in frames.items():
        series = pd.Series(hashes[name]["rows"])
        count = int(series.duplicated(keep="first").sum())
        share = count / max(len(frame), 1)
        numbers[name] = {"count": count, "share": share}
        if not count:
            continue
        bound = "" if limit is None else f" (max {limit:.2%})"
        message = f"{count} duplicate row(s) in {name}: {share:.2%}{bound}"
        failed = limit is not None and share > limit
        every = series.duplicated(keep=False).to_numpy()  # sample originals and copies
        item = finding("duplicates", name, None, every, message, frame, rng, failed)
        item.count, item.share = count, share
        found.append(item)
    return found, numbers


def leakage(
    test: Any,
    hashes: dict[str, dict[str, np.ndarray]],
    enabled: bool,
    rng: np.random.Generator,
) -> tuple[list[Finding], dict[str, Any]]:
    """Held-out rows that also appear in the training data."""
    import pandas as pd

    train_inputs = pd.Series(hashes["train"]["inputs"])
    leaked = pd.Series(hashes["test"]["inputs"]).isin(train_inputs).to_numpy()
    count = int(leaked.sum())
    numbers = {"count": count, "share": count / max(len(test), 1), "checked": enabled}
    if not count:
        return [], numbers
    message = (
        f"{count} test row(s) have the same inputs as a training row: "
        "the held-out score is inflated"
    )
    return [finding("leakage", "test", None, leaked, message, test, rng, enabled)], numbers


def _class_shift(train: Any, test: Any) -> dict[str, Any]:
    from scipy import stats

    counts_train, counts_test = train.value_counts(), test.value_counts()
    classes = sorted(counts_train.index.union(counts_test.index), key=str)
    counts = np.array(
        [c.reindex(classes, fill_value=0).to_numpy() for c in (counts_train, counts_test)]
    )
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    p_value = float(stats.chi2_contingency(counts)[1]) if len(classes) > 1 else 1.0
    return {
        "statistic": "total variation",
        "distance": float(0.5 * np.abs(shares[0] - shares[1]).sum()),
        "p_value": p_value,
        "train": {str(c): float(s) for c, s in zip(classes, shares[0], strict=True)},
        "test": {str(c): float(s) for c, s in zip(classes, shares[1], strict=True)},
    }


def label_shift(
    train: Any, test: Any, label: str, task: str
) -> tuple[list[Finding], dict[str, Any]]:
    """A finding when the label's distribution differs clearly between the frames."""
    from scipy import stats

    if task == "regression":
        result = stats.ks_2samp(train[label].dropna(), test[label].dropna())
        numbers: dict[str, Any] = {
            "statistic": "ks",
            "distance": float(result.statistic),
            "p_value": float(result.pvalue),
        }
    else:
        numbers = _class_shift(train[label], test[label])
    distance, p_value = numbers["distance"], numbers["p_value"]
    if distance <= LABEL_SHIFT_DISTANCE or p_value >= LABEL_SHIFT_P:
        return [], numbers
    message = (
        f"the label '{label}' is distributed differently in train and test "
        f"({numbers['statistic']} distance {distance:.3f}, p = {p_value:.2g})"
    )
    return [Finding("label_shift", "train/test", label, len(test), 1.0, message)], numbers

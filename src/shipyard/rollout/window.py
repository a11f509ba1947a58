"""Per-version traffic windows read from the gateway's prediction log.

The controller judges a canary from the same Parquet files every replica writes
(predictions, errors, feedback), not from one process's memory: the figures survive a
controller restart and cover all replicas that share the log folder. Each part file's
name starts with the time it was written, which is after every record in it, so a
window only opens files written since it began; a file is immutable once renamed into
place, so each is read once and kept until it falls out of every window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LogReader", "Traffic"]

_COLUMNS = {
    "predictions": ("ts", "request_id", "row", "version", "arm", "latency_ms", "prediction"),
    "errors": ("ts", "request_id", "version", "arm", "latency_ms"),
    "feedback": ("ts", "request_id", "row", "label"),
}


@dataclass
class Traffic:
    """One version's records in a window, as arrays."""

    requests: int
    errors: int
    latencies_ms: np.ndarray  # per answered request
    predictions: np.ndarray  # per row
    request_ids: np.ndarray  # per row
    rows: np.ndarray  # per row
    error_latencies_ms: np.ndarray


def _written_ms(path: Path) -> int:
    parts = path.name.split("-")
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return 0


class LogReader:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._cache: dict[Path, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def files(self, kind: str, model: str, since: float) -> list[Path]:
        """Part files of ``kind`` for ``model`` written at or after ``since``."""
        base = self.root / kind / f"model={model}"
        if not base.is_dir():
            return []
        found: list[Path] = []
        start = datetime.fromtimestamp(since, UTC).replace(minute=0, second=0, microsecond=0)
        hour, end = start, datetime.now(UTC) + timedelta(hours=1)
        while hour <= end:  # only the hour folders the window touches
            folder = base / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
            if folder.is_dir():
                for path in folder.glob("part-*.parquet"):
                    if _written_ms(path) >= since * 1000:
                        found.append(path)
            hour += timedelta(hours=1)
        return sorted(found)

    def _read(self, kind: str, path: Path) -> dict[str, np.ndarray]:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, ValueError):  # vanished or unreadable: skip, it is not ours to fix
            return {}
        columns: dict[str, np.ndarray] = {}
        for name in _COLUMNS[kind]:
            if name not in table.column_names:
                continue
            values = table.column(name).to_numpy(zero_copy_only=False)
            columns[name] = values
        with self._lock:
            self._cache[path] = columns
        return columns

    def frame(self, kind: str, model: str, since: float) -> dict[str, np.ndarray]:
        """Columns of every record of ``kind`` for ``model`` with ts >= since."""
        paths = self.files(kind, model, since)
        if kind == "feedback" and model != "_":
            paths += self.files(kind, "_", since)
        parts = [p for p in (self._read(kind, path) for path in paths) if p]
        self._forget(since)
        if not parts:
            return {}
        out: dict[str, np.ndarray] = {}
        for name in _COLUMNS[kind]:
            pieces = [p[name] for p in parts if name in p]
            if len(pieces) != len(parts):
                continue
            try:
                out[name] = np.concatenate(pieces)
            except ValueError:
                out[name] = np.concatenate([np.asarray(x, dtype=object) for x in pieces])
        keep = out["ts"] >= since
        return {k: v[keep] for k, v in out.items()}

    def _forget(self, since: float) -> None:
        """Drop cached files older than an hour before the oldest window in use."""
        horizon = (since - 3600) * 1000
        with self._lock:
            for path in [p for p in self._cache if _written_ms(p) < horizon]:
                del self._cache[path]

    # --- windows ------------------------------------------------------------------------
    def traffic(
        self,
        model: str,
        version: int,
        since: float,
        *,
        arms: tuple[str, ...] | None = None,
        exclude: tuple[str, ...] = ("shadow", "pinned"),
    ) -> Traffic:
        """Records served by ``version`` since ``since``; user-facing arms by default."""
        preds = self.frame("predictions", model, since)
        errs = self.frame("errors", model, since)
        p_mask = _select(preds, version, arms, exclude)
        e_mask = _select(errs, version, arms, exclude)
        if preds and p_mask.any():
            rows = preds["row"][p_mask].astype(np.int64)
            first = rows == 0
            latencies = preds["latency_ms"][p_mask][first].astype(np.float64)
            predictions = preds["prediction"][p_mask]
            request_ids = preds["request_id"][p_mask]
        else:
            rows = np.zeros(0, np.int64)
            latencies = np.zeros(0)
            predictions = np.zeros(0, dtype=object)
            request_ids = np.zeros(0, dtype=object)
        errors = int(e_mask.sum()) if errs else 0
        error_latencies = (
            errs["latency_ms"][e_mask].astype(np.float64) if errs and errors else np.zeros(0)
        )
        return Traffic(
            requests=len(latencies) + errors,
            errors=errors,
            latencies_ms=latencies,
            predictions=predictions,
            request_ids=request_ids,
            rows=rows,
            error_latencies_ms=error_latencies,
        )

    def labels(self, model: str, since: float) -> dict[tuple[str, int], str]:
        """Ground truth that arrived since ``since``, by (request id, row)."""
        feedback = self.frame("feedback", model, since)
        if not feedback:
            return {}
        return {
            (str(rid), int(row)): str(label)
            for rid, row, label in zip(
                feedback["request_id"], feedback["row"], feedback["label"], strict=True
            )
        }


def _select(
    columns: dict[str, np.ndarray],
    version: int,
    arms: tuple[str, ...] | None,
    exclude: tuple[str, ...],
) -> np.ndarray:
    if not columns:
        return np.zeros(0, dtype=bool)
    mask = columns["version"].astype(np.int64) == version
    arm = columns["arm"].astype(str)
    if arms is not None:
        mask &= np.isin(arm, arms)
    elif exclude:
        mask &= ~np.isin(arm, exclude)
    return mask


def joined_labels(traffic: Traffic, labels: dict[tuple[str, int], str]) -> tuple[Any, Any]:
    """(y_true, y_pred) as strings for the rows of ``traffic`` whose label arrived."""
    truth, predicted = [], []
    for rid, row, prediction in zip(
        traffic.request_ids, traffic.rows, traffic.predictions, strict=True
    ):
        label = labels.get((str(rid), int(row)))
        if label is not None:
            truth.append(label)
            predicted.append(_label_text(prediction))
    return np.asarray(truth, dtype=object), np.asarray(predicted, dtype=object)


def _label_text(value: Any) -> str:
    """A prediction in the form feedback labels take (feedback stores str(label))."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)

"""Live traffic per model version, from the gateway's own Prometheus counters.

The counters only ever grow, so a rate needs two readings. The sampler keeps the last
couple of minutes of readings (at most one a second, taken when someone asks) and
turns neighbouring readings into request rate, error rate, mean and p99 latency per
version. Nothing here runs unless a page asks, and memory is bounded by ``keep``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = ["TrafficSampler", "quantile"]

Key = tuple[str, str]  # model, version


@dataclass
class _Totals:
    requests: float = 0.0
    errors: float = 0.0
    latency_sum: float = 0.0
    latency_count: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile from cumulative histogram bucket counts (upper bound -> count),
    interpolated linearly inside the bucket, as Prometheus' histogram_quantile does."""
    edges = sorted(buckets)
    if not edges or buckets[edges[-1]] <= 0:
        return None
    rank, lower, below = q * buckets[edges[-1]], 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return lower
            inside = count - below
            return lower + (edge - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = edge, count
    return lower


def _read(metrics: Any) -> dict[Key, _Totals]:
    totals: dict[Key, _Totals] = {}

    def entry(labels: dict[str, str]) -> _Totals:
        return totals.setdefault((labels["model"], labels["version"]), _Totals())

    for family in metrics.requests.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                t = entry(s.labels)
                t.requests += s.value
                if s.labels.get("code", "200") != "200":
                    t.errors += s.value
    for family in metrics.latency.collect():
        for s in family.samples:
            t = entry(s.labels)
            if s.name.endswith("_sum"):
                t.latency_sum += s.value
            elif s.name.endswith("_count"):
                t.latency_count += s.value
            elif s.name.endswith("_bucket"):
                edge = float(s.labels["le"])
                t.buckets[edge] = t.buckets.get(edge, 0.0) + s.value
    return totals


def _point(dt: float, old: _Totals, new: _Totals) -> dict[str, float | None]:
    requests = new.requests - old.requests
    count = new.latency_count - old.latency_count
    delta = {e: c - old.buckets.get(e, 0.0) for e, c in new.buckets.items()}
    p99 = quantile(0.99, delta) if count > 0 else None
    return {
        "rps": requests / dt,
        "error_rate": (new.errors - old.errors) / requests if requests > 0 else None,
        "mean_ms": 1000 * (new.latency_sum - old.latency_sum) / count if count > 0 else None,
        "p99_ms": 1000 * p99 if p99 is not None else None,
    }


class TrafficSampler:
    def __init__(
        self,
        metrics: Any,
        *,
        keep: int = 120,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics, self.every, self.clock = metrics, every, clock
        self._readings: deque[tuple[float, dict[Key, _Totals]]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Take a reading unless the last one is fresher than ``every`` seconds."""
        now = self.clock()
        with self._lock:
            if self._readings and now - self._readings[-1][0] < self.every:
                return
            self._readings.append((now, _read(self.metrics)))

    def series(self, model: str) -> dict[str, list[dict[str, float | None]]]:
        """Per version of ``model``: a point per pair of neighbouring readings, each
        with ``t`` (seconds before the newest reading) and the rates."""
        with self._lock:
            readings = list(self._readings)
        found: dict[str, list[dict[str, float | None]]] = {}
        if len(readings) < 2:
            return found
        newest = readings[-1][0]
        for (t0, old), (t1, new) in pairwise(readings):
            for (name, version), totals in new.items():
                if name != model:
                    continue
                point = _point(t1 - t0, old.get((name, version), _Totals()), totals)
                found.setdefault(version, []).append({"t": round(t1 - newest, 2), **point})
        return found

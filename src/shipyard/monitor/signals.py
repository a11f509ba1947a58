"""Serving-health signals from the prediction log, and a model-extraction signal.

Health: error rate (the ``errors`` log against answered requests), latency p50/p99 per
request, and per-client volume.

Extraction: someone copying a model sends queries chosen to map its decision surface,
not queries that look like the population the model serves. Two things give that
away, per client, measured against the training (reference) data:

* **coverage shape** — each numeric input is cut into the reference's deciles (each
  holds 10 % of normal traffic) and each categorical input into the reference's
  category shares; the total-variation distance between the client's shares and the
  reference's, averaged over inputs. Uniform probing of the input range piles into
  the tails of skewed inputs; a grid walk sits in a few cells.
* **step pattern** — the distances between a client's successive queries (inputs
  standardised by the reference's median and IQR) against the distances between
  random pairs of reference rows, compared with the two-sample Kolmogorov–Smirnov
  statistic. Independent normal queries step like random pairs; probes that sweep
  the range step longer, and perturbation walks step much shorter.

A client's score is the larger of the two (both lie in 0..1); it is flagged when the
score is over the threshold and it sent at least ``min_queries`` rows. Replayed normal
traffic scores near the sampling noise of those statistics (~0.1 for 200 queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ClientSignal", "ExtractionReport", "HealthReport", "extraction", "serving_health"]

_REFERENCE_PAIRS = 4000


@dataclass(frozen=True)
class HealthReport:
    requests: int
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    clients: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, float | None]:
        return {
            "requests": float(self.requests),
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


def serving_health(predictions: pd.DataFrame, errors: pd.DataFrame | None = None) -> HealthReport:
    """Request counts, error rate and latency percentiles over one window.

    ``predictions`` has one row per predicted row (``request_id``, ``latency_ms``,
    ``client``); ``errors`` one row per failed request. A window with no requests at
    all has no error rate (None), not 0.
    """
    errors = errors if errors is not None else pd.DataFrame()
    per_request = (
        predictions.drop_duplicates("request_id") if "request_id" in predictions else pd.DataFrame()
    )
    answered, failed = len(per_request), len(errors)
    total = answered + failed
    latency = per_request["latency_ms"].to_numpy(float) if answered else np.array([])
    clients: dict[str, int] = {}
    if "client" in predictions and len(predictions):
        clients = {str(k): int(v) for k, v in predictions["client"].value_counts().items()}
    return HealthReport(
        requests=total,
        errors=failed,
        error_rate=failed / total if total else None,
        p50_ms=float(np.percentile(latency, 50)) if latency.size else None,
        p99_ms=float(np.percentile(latency, 99)) if latency.size else None,
        clients=clients,
    )


@dataclass(frozen=True)
class ClientSignal:
    client: str
    queries: int
    volume_share: float
    coverage_distance: float
    step_distance: float
    score: float
    flagged: bool


@dataclass(frozen=True)
class ExtractionReport:
    threshold: float
    clients: list[ClientSignal]

    @property
    def score(self) -> float | None:
        scored = [c.score for c in self.clients]
        return max(scored) if scored else None

    @property
    def flagged(self) -> list[ClientSignal]:
        return [c for c in self.clients if c.flagged]

    def metrics(self) -> dict[str, float | None]:
        return {"extraction.score": self.score, "extraction.flagged_clients": len(self.flagged)}


@dataclass(frozen=True)
class _Reference:
    """What normal traffic looks like, learnt once from the reference data."""

    numeric: list[str]
    categorical: list[str]
    edges: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    shares: dict[str, pd.Series]
    centre: np.ndarray
    scale: np.ndarray
    pair_distances: np.ndarray


def _learn(
    reference: pd.DataFrame, features: Sequence[str], rng: np.random.Generator
) -> _Reference:
    numeric = [f for f in features if pd.api.types.is_numeric_dtype(reference[f])]
    categorical = [f for f in features if f not in numeric]
    edges = {
        f: np.unique(np.nanquantile(reference[f].to_numpy(float), np.linspace(0.1, 0.9, 9)))
        for f in numeric
    }
    expected = {f: _cell_shares(reference[f].to_numpy(float), edges[f]) for f in numeric}
    shares = {f: reference[f].astype(str).value_counts(normalize=True) for f in categorical}
    values = reference[numeric].to_numpy(float)
    centre = np.nanmedian(values, axis=0)
    q75, q25 = np.nanpercentile(values, [75, 25], axis=0)
    scale = np.where(q75 - q25 > 0, q75 - q25, 1.0)
    a = rng.integers(0, len(values), _REFERENCE_PAIRS)
    b = rng.integers(0, len(values), _REFERENCE_PAIRS)
    scaled = (values - centre) / scale
    pairs = np.linalg.norm(scaled[a] - scaled[b], axis=1)
    finite = pairs[np.isfinite(pairs)]
    return _Reference(numeric, categorical, edges, expected, shares, centre, scale, finite)


def _cell_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each cell between ``edges`` (ties with an edge go right)."""
    cells = np.searchsorted(edges, values[np.isfinite(values)], side="right")
    return np.bincount(cells, minlength=len(edges) + 1) / max(len(cells), 1)


def _coverage_distance(ref: _Reference, queries: pd.DataFrame) -> float:
    distances = []
    for name in ref.numeric:
        observed = _cell_shares(queries[name].to_numpy(float), ref.edges[name])
        distances.append(0.5 * float(np.abs(observed - ref.expected[name]).sum()))
    for name in ref.categorical:
        observed = queries[name].astype(str).value_counts(normalize=True)
        both = ref.shares[name].index.union(observed.index)
        gap = ref.shares[name].reindex(both, fill_value=0) - observed.reindex(both, fill_value=0)
        distances.append(0.5 * float(gap.abs().sum()))
    return float(np.mean(distances)) if distances else 0.0


def _step_distance(ref: _Reference, queries: pd.DataFrame) -> float:
    if not ref.numeric or len(queries) < 3:
        return 0.0
    scaled = (queries[ref.numeric].to_numpy(float) - ref.centre) / ref.scale
    steps = np.linalg.norm(np.diff(scaled, axis=0), axis=1)
    steps = steps[np.isfinite(steps)]
    if steps.size < 2:
        return 0.0
    return float(stats.ks_2samp(steps, ref.pair_distances).statistic)


def extraction(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    features: Sequence[str],
    *,
    threshold: float = 0.5,
    min_queries: int = 50,
    seed: int = 0,
) -> ExtractionReport:
    """Score every client in ``current`` (one row per query, with ``client`` and, for
    ordering, ``ts``/``row``); see the module docstring for the method."""
    if current.empty or "client" not in current:
        return ExtractionReport(threshold, [])
    ref = _learn(reference, [f for f in features if f in reference], np.random.default_rng(seed))
    order = [c for c in ("ts", "row") if c in current]
    ordered = current.sort_values(order, kind="stable") if order else current
    total = len(ordered)
    signals = []
    for client, queries in ordered.groupby("client", sort=True):
        signals.append(_client_signal(ref, str(client), queries, total, threshold, min_queries))
    return ExtractionReport(threshold, signals)


def _client_signal(
    ref: _Reference,
    client: str,
    queries: pd.DataFrame,
    total: int,
    threshold: float,
    min_queries: int,
) -> ClientSignal:
    enough = len(queries) >= min_queries
    coverage = _coverage_distance(ref, queries) if enough else 0.0
    step = _step_distance(ref, queries) if enough else 0.0
    score = max(coverage, step)
    return ClientSignal(
        client=client,
        queries=len(queries),
        volume_share=len(queries) / total,
        coverage_distance=round(coverage, 4),
        step_distance=round(step, 4),
        score=round(score, 4),
        flagged=enough and score > threshold,
    )

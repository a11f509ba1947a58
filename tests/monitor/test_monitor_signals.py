"""Serving-health figures from the log, and the model-extraction signal: probing is
flagged, replayed normal traffic is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.monitor.signals import extraction, serving_health

FEATURES = ["income", "debt_ratio", "age", "purpose"]


def population(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.lognormal(10.8, 0.45, rows),
            "debt_ratio": np.clip(rng.beta(2, 5, rows), 0, 1),
            "age": rng.integers(19, 75, rows),
            "purpose": rng.choice(["car", "home", "education", "business"], rows),
        }
    )


def as_client(frame: pd.DataFrame, client: str, start: float = 0.0) -> pd.DataFrame:
    return frame.assign(client=client, ts=start + np.arange(len(frame)) * 0.01, row=0)


def uniform_probe(reference: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Points drawn uniformly over the range of every input (a classic extraction)."""
    rng = np.random.default_rng(seed)
    out = {
        name: rng.uniform(reference[name].min(), reference[name].max(), rows)
        for name in ("income", "debt_ratio", "age")
    }
    out["purpose"] = rng.choice(sorted(reference["purpose"].unique()), rows)
    return pd.DataFrame(out)


def perturbation_walk(reference: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Tiny steps around one point: mapping a decision boundary locally."""
    rng = np.random.default_rng(seed)
    start = reference.iloc[0]
    steps = {n: rng.normal(0, reference[n].std() * 0.01, rows).cumsum() for n in FEATURES[:3]}
    walk = pd.DataFrame({n: start[n] + steps[n] for n in steps})
    walk["purpose"] = start["purpose"]
    return walk


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return population(5000, seed=1)


def test_uniform_probing_and_walks_are_flagged_and_normal_replay_is_not(reference):
    traffic = pd.concat(
        [
            as_client(population(300, seed=2), "app-1"),
            as_client(population(300, seed=3), "app-2"),
            as_client(uniform_probe(reference, 300, seed=4), "scraper"),
            as_client(perturbation_walk(reference, 300, seed=5), "walker"),
        ]
    )
    report = extraction(traffic, reference, FEATURES, threshold=0.5, min_queries=50)
    by_client = {c.client: c for c in report.clients}
    assert [c.client for c in report.flagged] == ["scraper", "walker"]
    assert by_client["app-1"].score < 0.2 and by_client["app-2"].score < 0.2
    assert by_client["scraper"].coverage_distance > 0.2  # piles into the tails
    assert by_client["scraper"].step_distance > 0.5  # and steps much longer
    assert by_client["walker"].step_distance > 0.9  # steps far shorter than normal
    assert by_client["scraper"].volume_share == pytest.approx(0.25)
    assert report.metrics() == {
        "extraction.score": max(c.score for c in report.clients),
        "extraction.flagged_clients": 2,
    }


def test_normal_clients_stay_under_the_threshold_across_seeds(reference):
    scores = []
    for seed in range(20):
        sample = as_client(population(100, seed=100 + seed), f"c{seed}")
        (client,) = extraction(sample, reference, FEATURES, min_queries=50).clients
        scores.append(client.score)
    assert max(scores) < 0.5, scores  # no false flag in 20 normal clients of 100 queries


def test_replayed_training_rows_are_not_flagged(reference):
    replay = as_client(reference.sample(400, random_state=9), "replayer")
    (client,) = extraction(replay, reference, FEATURES).clients
    assert not client.flagged and client.score < 0.15


def test_few_queries_are_never_flagged(reference):
    probe = as_client(uniform_probe(reference, 20, seed=1), "quick")
    (client,) = extraction(probe, reference, FEATURES, min_queries=50).clients
    assert client.queries == 20 and not client.flagged and client.score == 0


def test_no_traffic_has_no_score(reference):
    report = extraction(pd.DataFrame(), reference, FEATURES)
    assert report.metrics() == {"extraction.score": None, "extraction.flagged_clients": 0}


def test_serving_health_counts_requests_errors_and_latency():
    predictions = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c", "d"],
            "row": [0, 1, 0, 0, 0],
            "latency_ms": [10.0, 10.0, 20.0, 30.0, 40.0],
            "client": ["x", "x", "x", "y", "y"],
        }
    )
    errors = pd.DataFrame({"request_id": ["e"], "error": ["boom"], "latency_ms": [5.0]})
    health = serving_health(predictions, errors)
    assert health.requests == 5 and health.errors == 1
    assert health.error_rate == pytest.approx(0.2)
    assert health.p50_ms == pytest.approx(25.0)
    assert health.p99_ms == pytest.approx(np.percentile([10, 20, 30, 40], 99))
    assert health.clients == {"x": 3, "y": 2}
    assert health.metrics()["requests"] == 5.0


def test_an_empty_window_has_no_rates_rather_than_zero():
    health = serving_health(pd.DataFrame())
    assert health.requests == 0
    assert health.error_rate is None and health.p99_ms is None

"""Latency gate: the timing loop with a fake clock, then the example model, fast and
deliberately slowed."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shipyard.scaffold
from shipyard.checks.base import FAILED, PASSED, SKIPPED, CheckContext
from shipyard.checks.latency import BATCH_SIZES, latency_figures, latency_gate, time_calls
from shipyard.config import LatencyGate
from shipyard.formats import LoadedModel

EXAMPLE = Path(shipyard.scaffold.__file__).parent / "examples" / "credit-risk"
NUMERIC = ["age", "income", "debt_ratio", "history_years", "amount"]
FEATURES = [*NUMERIC, "purpose"]


class FakeClock:
    """perf_counter_ns stand-in: each reading advances by ``step`` nanoseconds."""

    def __init__(self, step: int) -> None:
        self.now, self.step = 0, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def test_time_calls_stops_at_max_calls() -> None:
    seen: list[int] = []

    durations = time_calls(seen.append, [1, 2, 3], max_calls=7, budget_ns=10**12)

    assert len(durations) == 7
    assert seen == [1, 2, 3, 1, 2, 3, 1]


def test_time_calls_stops_when_the_budget_is_spent() -> None:
    clock = FakeClock(step=100)  # each call measures 100 ns, and 200 ns pass per call

    durations = time_calls(
        lambda _: None, [0], max_calls=1000, budget_ns=1000, min_calls=1, clock=clock
    )

    assert durations.tolist() == [100] * 5


def test_time_calls_makes_min_calls_even_past_the_budget() -> None:
    durations = time_calls(
        lambda _: None, [0], max_calls=100, budget_ns=0, min_calls=4, clock=FakeClock(10)
    )

    assert len(durations) == 4


def test_latency_figures() -> None:
    durations_ns = np.arange(1, 101) * 1_000_000  # 1..100 ms

    figures = latency_figures(durations_ns, batch_size=32)

    assert figures["p50_ms"] == pytest.approx(50.5)
    assert figures["p99_ms"] == pytest.approx(99.01)
    assert figures["max_ms"] == 100
    assert figures["calls"] == 100
    assert figures["rows_per_s"] == pytest.approx(32 * 100 / 5.05)


def _example_context() -> CheckContext:
    """The example's data and src/train.py pipeline, trained in-process."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "src" / "make_data.py")
    assert spec and spec.loader
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    frame = make_data.make(2000, 3)
    train, test = frame.iloc[:1500], frame.iloc[1500:]
    features = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
        ]
    )
    pipeline = Pipeline([("features", features), ("clf", LogisticRegression(max_iter=500))])
    pipeline.fit(train[FEATURES], train["default"])
    model = LoadedModel("sklearn", pipeline, Path("model.skops"), {"inputs": FEATURES})
    return CheckContext(Path("."), model, "model", train, test, "default", FEATURES)


@pytest.fixture(scope="module")
def example() -> CheckContext:
    return _example_context()


class Slowed:
    """The example model with ``delay`` seconds added to every predict call."""

    def __init__(self, model: Any, delay: float) -> None:
        self.model, self.delay, self.inputs, self.format = model, delay, model.inputs, "sklearn"

    def predict(self, frame: Any) -> Any:
        time.sleep(self.delay)
        return self.model.predict(frame)


def test_the_example_model_passes_with_numbers_for_every_batch_size(example) -> None:
    result = latency_gate(example, LatencyGate(p99_ms="<= 1000", rows=200), budget_s=0.6)

    assert result.status == PASSED, result.summary
    for size in BATCH_SIZES:
        assert result.numbers[f"batch_{size}_rows_per_s"] > 0
        assert result.numbers[f"batch_{size}_calls"] >= 5
    assert result.numbers["p50_ms"] <= result.numbers["p95_ms"] <= result.numbers["p99_ms"]
    assert [row["batch_size"] for row in result.tables["latency"]] == list(BATCH_SIZES)
    assert result.summary.startswith("single row p50")
    json.dumps(result.numbers, allow_nan=False)


def test_the_result_carries_a_latency_histogram(example) -> None:
    pytest.importorskip("matplotlib")

    result = latency_gate(example, LatencyGate(rows=100), budget_s=0.3)

    assert result.plots["latency_histogram"].startswith(b"\x89PNG\r\n\x1a\n")


def test_a_slowed_model_fails_with_a_readable_reason(example) -> None:
    slowed = CheckContext(
        example.root, Slowed(example.model, 0.025), "slowed", None, example.test, "default", []
    )

    started = time.perf_counter()
    result = latency_gate(slowed, LatencyGate(p99_ms="<= 20"), budget_s=0.3)

    assert time.perf_counter() - started < 10  # bounded: 1,000 calls would take 25 s
    assert result.status == FAILED
    assert result.numbers["p99_ms"] > 20
    assert "too slow: single-row p99" in result.summary
    assert "ms is not <= 20 ms" in result.summary
    assert [c["passed"] for c in result.tables["thresholds"]] == [False]
    assert "gates.latency" in result.advice


def test_each_threshold_is_checked_on_single_rows(example) -> None:
    cfg = LatencyGate(p50_ms="<= 1000", p95_ms="< 0.000001", p99_ms="<= 1000", rows=50)

    result = latency_gate(example, cfg, budget_s=0.3)

    assert result.status == FAILED
    assert [c["passed"] for c in result.tables["thresholds"]] == [True, False, True]
    assert "single-row p95" in result.summary and "single-row p99" not in result.summary


def test_no_rows_to_time_skips(example) -> None:
    ctx = CheckContext(example.root, example.model, "model", None, None, "default", FEATURES)

    assert latency_gate(ctx, LatencyGate()).status == SKIPPED

"""Latency gate: how fast the model artifact itself predicts, before any server is added.

Single-row latency (p50/p95/p99) and throughput at batch sizes 1, 32 and 1024, timed
with ``time.perf_counter_ns`` around ``model.predict`` on rows taken from the held-out
set (or the training set). Each batch size is warmed up first, then timed until it has
enough calls for a stable p99 or its share of a fixed time budget (three seconds by
default) is spent, whichever comes first: a slow model is measured on fewer calls
rather than making ``shipyard check`` slow. The thresholds (``p50_ms``, ``p95_ms``,
``p99_ms``) apply to single-row latency.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shipyard.checks.base import FAILED, PASSED, SKIPPED, CheckContext, GateResult
from shipyard.core.thresholds import parse_threshold

__all__ = ["BATCH_SIZES", "latency_figures", "latency_gate", "time_calls"]

BATCH_SIZES = (1, 32, 1024)
BUDGET_S = 3.0
# Share of the budget and most timed calls per batch size; single rows get the most,
# since their p99 is gated. At least MIN_CALLS are made even past the budget.
_BUDGET_SHARE = {1: 0.5, 32: 0.25, 1024: 0.25}
_MAX_CALLS = {32: 300, 1024: 50}
WARMUP_CALLS, MIN_CALLS = 5, 5
BATCHES = 8
SINGLE_ROWS = 256
PERCENTILES = (50, 95, 99)


def time_calls(
    call: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    max_calls: int,
    budget_ns: int,
    min_calls: int = MIN_CALLS,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> np.ndarray:
    """Nanoseconds of each ``call(input)``, cycling through ``inputs``.

    Stops after ``max_calls`` calls, or once ``budget_ns`` has passed and at least
    ``min_calls`` were made.
    """
    durations: list[int] = []
    deadline = clock() + budget_ns
    while len(durations) < max_calls:
        item = inputs[len(durations) % len(inputs)]
        start = clock()
        call(item)
        end = clock()
        durations.append(end - start)
        if end >= deadline and len(durations) >= min_calls:
            break
    return np.asarray(durations, dtype=np.int64)


def latency_figures(durations_ns: np.ndarray, batch_size: int) -> dict[str, float]:
    """Percentiles (ms), mean, max and rows per second of one batch size's timings."""
    ms = np.asarray(durations_ns, dtype=float) / 1e6
    figures = {f"p{p}_ms": float(np.percentile(ms, p)) for p in PERCENTILES}
    total_s = max(float(ms.sum()) / 1e3, 1e-9)
    figures.update(
        mean_ms=float(ms.mean()),
        max_ms=float(ms.max()),
        calls=len(ms),
        rows_per_s=batch_size * len(ms) / total_s,
    )
    return figures


def latency_gate(ctx: CheckContext, cfg: Any, *, budget_s: float = BUDGET_S) -> GateResult:
    """Time ``ctx.model.predict`` and compare single-row percentiles with ``cfg``.

    ``cfg`` is a ``LatencyGate``: ``rows`` caps the input rows drawn (batches are
    sampled from them) and the timed single-row calls. ``budget_s`` bounds the timed
    part (warm-up excluded). Never raises for a slow model; an error the model raises
    propagates to the runner.
    """
    started = time.perf_counter()
    pool = _input_rows(ctx, cfg.rows)
    if pool is None:
        return GateResult("latency", SKIPPED, "no held-out or training rows to time the model on")
    rng = np.random.default_rng(ctx.seed)
    timings = {size: _measure(ctx.model, pool, size, cfg, budget_s, rng) for size in BATCH_SIZES}
    per_size = {size: latency_figures(t, size) for size, t in timings.items()}
    checks = _checks(cfg, per_size[1])
    failed = [c for c in checks if not c["passed"]]
    numbers = _numbers(per_size)
    plot = _histogram(timings[1] / 1e6, per_size[1])
    summary = _summary(per_size, failed) + ("" if plot else " (no histogram: install matplotlib)")
    return GateResult(
        "latency",
        FAILED if failed else PASSED,
        summary,
        numbers,
        {"latency": _table(per_size), "thresholds": checks},
        {"latency_histogram": plot} if plot else {},
        advice=_ADVICE if failed else "",
        seconds=time.perf_counter() - started,
    )


_ADVICE = (
    "The model is slower than gates.latency allows. Profile one prediction of the "
    "artifact (not the server): a smaller model (fewer trees, shallower trees, fewer "
    "features), a compiled format (ONNX with onnxruntime, native XGBoost/LightGBM), or "
    "cheaper preprocessing in the pipeline usually helps. If the budget itself is "
    "wrong, change gates.latency in shipyard.yaml in a reviewed commit."
)


def _input_rows(ctx: CheckContext, rows: int) -> Any | None:
    """Up to ``rows`` rows of the model's input columns, in a fixed random order."""
    frame = ctx.test if ctx.test is not None and len(ctx.test) else ctx.train
    if frame is None or not len(frame):
        return None
    columns = list(ctx.features) or list(getattr(ctx.model, "inputs", None) or [])
    columns = columns or [c for c in frame.columns if c != ctx.label]
    order = np.random.default_rng(ctx.seed).permutation(len(frame))[:rows]
    return frame.iloc[order][columns].reset_index(drop=True)


def _measure(
    model: Any, pool: Any, size: int, cfg: Any, budget_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Warm up, then time ``model.predict`` on batches of ``size`` rows."""
    max_calls = cfg.rows if size == 1 else _MAX_CALLS[size]
    if size == 1:  # slices are cheap views; cycling through 256 rows is plenty
        batches = [pool.iloc[i : i + 1] for i in range(min(len(pool), SINGLE_ROWS))]
    else:  # a few batches drawn with replacement, so a small pool still fills them
        batches = [pool.iloc[rng.integers(0, len(pool), size)] for _ in range(BATCHES)]
    for i in range(WARMUP_CALLS):
        model.predict(batches[i % len(batches)])
    budget_ns = int(budget_s * _BUDGET_SHARE[size] * 1e9)
    return time_calls(model.predict, batches, max_calls=max_calls, budget_ns=budget_ns)


def _checks(cfg: Any, single: dict[str, float]) -> list[dict[str, Any]]:
    checks = []
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        spec = getattr(cfg, key)
        if spec is None:
            continue
        threshold = parse_threshold(spec)
        checks.append(
            {
                "measure": f"single-row {key.removesuffix('_ms')}",
                "observed_ms": single[key],
                "threshold": f"{threshold} ms",
                "passed": threshold.passes(single[key]),
            }
        )
    return checks


def _numbers(per_size: dict[int, dict[str, float]]) -> dict[str, Any]:
    single = per_size[1]
    numbers: dict[str, Any] = {k: single[k] for k in ("p50_ms", "p95_ms", "p99_ms")}
    numbers.update(mean_ms=single["mean_ms"], max_ms=single["max_ms"], calls=single["calls"])
    for size, figures in per_size.items():
        for key, value in figures.items():
            numbers[f"batch_{size}_{key}"] = value
    return numbers


def _table(per_size: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    return [{"batch_size": size, **figures} for size, figures in per_size.items()]


def _summary(per_size: dict[int, dict[str, float]], failed: list[dict[str, Any]]) -> str:
    single = per_size[1]
    throughput = " / ".join(f"{per_size[s]['rows_per_s']:,.0f}" for s in BATCH_SIZES)
    numbers = (
        f"single row p50 {single['p50_ms']:.2f} ms, p95 {single['p95_ms']:.2f} ms, "
        f"p99 {single['p99_ms']:.2f} ms ({single['calls']} calls); rows/s at batch "
        f"{'/'.join(map(str, BATCH_SIZES))}: {throughput}"
    )
    if not failed:
        return numbers
    broken = ", ".join(
        f"{c['measure']} {c['observed_ms']:.2f} ms is not {c['threshold']}" for c in failed
    )
    return f"too slow: {broken}; {numbers}"


def _histogram(ms: np.ndarray, single: dict[str, float]) -> bytes | None:
    """PNG of the single-row latencies with the percentiles marked (None without
    matplotlib). Uses a Figure directly, never pyplot's global state."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.hist(ms, bins=min(60, max(10, len(ms) // 10)), color="#4c72b0")
    for p, style in zip(PERCENTILES, ("-", "--", ":"), strict=True):
        value = single[f"p{p}_ms"]
        axes.axvline(value, color="#c44e52", linestyle=style, label=f"p{p} {value:.2f} ms")
    axes.set_xlabel("single-row latency (ms)")
    axes.set_ylabel("calls")
    axes.legend(frameon=False, fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

"""The gateway's state: routing in force, loaded models, and how a request is answered.

Routing and flags live in the metadata store. A background thread polls their change
token; on a change it reads a new snapshot, loads every model version it routes to,
and only then swaps the snapshot in — one reference assignment — so a request sees
either the old routing with its loaded models or the new one with its loaded models,
never a version that is not ready. In-flight requests keep the snapshot they started
with, so nothing they use is unloaded under them.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.core.flags import evaluate
from shipyard.core.routing import Decision, RoutingTable, route
from shipyard.errors import NotFound
from shipyard.registry.service import Registry
from shipyard.serving.control import ControlPlane, Snapshot
from shipyard.serving.metrics import GatewayMetrics
from shipyard.serving.pool import ModelPool, Served
from shipyard.serving.predlog import PredictionLog

__all__ = ["Gateway", "Settings"]


@dataclass(frozen=True)
class Settings:
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]", "::1")
    max_body_bytes: int = 10 * 1024 * 1024
    max_rows: int = 10_000
    request_timeout: float = 30.0
    poll_interval: float = 0.5
    rate_limit: float = 0.0  # requests per second per client; 0: no limit
    rate_burst: int = 100
    log_dir: Path | None = None
    inline_rows: int = 64  # larger batches are predicted in a worker thread
    micro_batch_ms: float = 0.0  # > 0: group concurrent small requests into one predict
    micro_batch_rows: int = 64


@dataclass
class Answer:
    request_id: str
    decision: Decision
    served: Served
    predictions: Any
    probabilities: Any | None
    seconds: float
    rows: list[list[Any]] = field(default_factory=list)


class _Buckets:
    """Token buckets per client key for the rate limit."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float) -> bool:
        with self._lock:
            tokens, last = self._state.get(client, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._state[client] = (tokens, now)
                return False
            self._state[client] = (tokens - 1, now)
            if len(self._state) > 100_000:  # bounded memory under many clients
                self._state.clear()
            return True


class MicroBatcher:
    """Groups concurrent small requests for one version into one ``predict`` call.

    The first request of a group waits at most ``window`` seconds for company; a group
    that reaches ``max_rows`` goes at once. If the grouped call fails, each request is
    answered on its own, so one bad row cannot fail its neighbours.
    """

    def __init__(self, gateway: Gateway, window: float, max_rows: int) -> None:
        self.gateway, self.window, self.max_rows = gateway, window, max_rows
        self._pending: dict[tuple[str, int], list[tuple[list[list[Any]], Any]]] = {}

    async def answer(
        self, model: str, decision: Decision, rows: list[list[Any]], served: Served
    ) -> Answer:
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        key = (model, decision.version)
        group = self._pending.setdefault(key, [])
        group.append((rows, future))
        if len(group) == 1:
            loop.call_later(self.window, self._flush, key, model, decision, served)
        elif sum(len(r) for r, _ in group) >= self.max_rows:
            self._flush(key, model, decision, served)
        answer: Answer = await future
        answer.decision = decision
        return answer

    def _flush(self, key: tuple[str, int], model: str, decision: Decision, served: Served) -> None:
        group = self._pending.pop(key, [])
        if not group:
            return
        try:
            combined = self.gateway.answer(
                model, decision, [r for rows, _ in group for r in rows], served
            )
        except Exception:
            for rows, future in group:  # isolate the failure to the request that caused it
                self._settle(
                    future, lambda rows=rows: self.gateway.answer(model, decision, rows, served)
                )
            return
        start = 0
        for rows, future in group:
            end = start + len(rows)
            part = Answer(
                uuid.uuid4().hex,
                decision,
                served,
                combined.predictions[start:end],
                None if combined.probabilities is None else combined.probabilities[start:end],
                combined.seconds,
                rows,
            )
            start = end
            if not future.done():
                future.set_result(part)

    @staticmethod
    def _settle(future: Any, compute: Any) -> None:
        try:
            result = compute()
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)


class Gateway:
    def __init__(
        self,
        registry: Registry,
        control: ControlPlane,
        settings: Settings,
        cache_dir: Path,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        self.control = control
        self.settings = settings
        self.pool = ModelPool(registry, cache_dir)
        self.metrics = GatewayMetrics()
        self.log = PredictionLog(settings.log_dir) if settings.log_dir else None
        self.rng = rng or random.Random()
        self.buckets = _Buckets(settings.rate_limit, settings.rate_burst)
        self.batcher = (
            MicroBatcher(self, settings.micro_batch_ms / 1000, settings.micro_batch_rows)
            if settings.micro_batch_ms > 0
            else None
        )
        self.project: Any = None  # set by gateway_for: rollouts need the project's config
        self.snapshot = Snapshot(-1, {}, {})
        self._defaults: dict[str, int] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.ready = False

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Load the routed versions and each other model's default version, then report
        ready: a request never waits for a model to load after /readyz said yes."""
        self.refresh()
        for model in self.registry.models():
            name = str(model["name"])
            if name not in self.snapshot.tables and model["latest"] is not None:
                try:
                    self.pool.get(name, self.decide(name, {}).version)
                except Exception:  # an unloadable default is reported per request instead
                    continue
        self.metrics.models_loaded.set(len(self.pool.loaded()))
        self.ready = True
        self._poller = threading.Thread(target=self._poll, name="routing-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller:
            self._poller.join(timeout=5)
        if self.log:
            self.log.close()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.poll_interval):
            try:
                if self.control.change_token() != self.snapshot.revision:
                    self.refresh()
            except Exception:  # a failed poll keeps the routing in force; retried next tick
                continue

    def refresh(self) -> None:
        """Load the newest routing and every model it needs, then swap it in."""
        snapshot = self.control.snapshot()
        wanted = {(t.model, v) for t in snapshot.tables.values() for v in t.versions()}
        for flag_table in snapshot.tables.values():
            wanted |= self._flag_versions(flag_table, snapshot)
        for model, version in sorted(wanted):
            self.pool.get(model, version)
        self.snapshot = snapshot
        self._defaults.clear()
        self.pool.keep(wanted | {(m, v) for m, v in self.pool.loaded() if m not in snapshot.tables})
        self.metrics.routing_revision.set(snapshot.revision)
        self.metrics.models_loaded.set(len(self.pool.loaded()))

    @staticmethod
    def _flag_versions(table: RoutingTable, snapshot: Snapshot) -> set[tuple[str, int]]:
        flag = snapshot.flags.get(table.flag or "")
        if flag is None:
            return set()
        return {(table.model, int(v)) for v in flag.variants.values() if str(v).isdigit()}

    # --- routing ----------------------------------------------------------------------
    def decide(
        self, model: str, attributes: Mapping[str, str], version: int | None = None
    ) -> Decision:
        if version is not None:
            return Decision(version, "pinned")
        snapshot = self.snapshot
        table = snapshot.tables.get(model)
        if table is None:
            default = self._defaults.get(model)
            if default is None:
                default = self._defaults[model] = self.pool.default_version(model)
            return Decision(default, "default")
        flag_version = None
        if table.flag and table.flag in snapshot.flags:
            key = attributes.get(table.sticky) if table.sticky else None
            value = evaluate(snapshot.flags[table.flag], attributes, key).value
            flag_version = int(value) if str(value).isdigit() else None
        return route(table, attributes, self.rng.random(), flag_version)

    def routed_attributes(self, model: str) -> set[str]:
        """The request attributes the model's routing looks at (to build only those)."""
        snapshot = self.snapshot
        table = snapshot.tables.get(model)
        if table is None:
            return set()
        names = {table.sticky} if table.sticky else set()
        for segment in table.segments:
            names |= set(segment.match)
        flag = snapshot.flags.get(table.flag or "")
        if flag is not None:
            for rule in flag.rules:
                names |= set(rule.match)
        return names

    # --- answering ----------------------------------------------------------------------
    def answer(
        self, model: str, decision: Decision, rows: list[list[Any]], served: Served
    ) -> Answer:
        started = time.perf_counter()
        predictions, probabilities = served.predict_rows(rows)
        return Answer(
            uuid.uuid4().hex,
            decision,
            served,
            predictions,
            probabilities,
            time.perf_counter() - started,
            rows,
        )

    def served(self, model: str, version: int) -> Served:
        try:
            return self.pool.get(model, version)
        except NotFound:
            raise
        except Exception as exc:  # an artifact that will not load is the server's fault
            raise RuntimeError(f"cannot load {model}:{version}: {exc}") from exc

    def record(self, model: str, answer: Answer, client: str, arm: str | None = None) -> None:
        version = answer.served.label
        arm = arm or answer.decision.arm
        self.metrics.rows.labels(model, version, arm).inc(len(answer.rows))
        self.metrics.observe_predictions(model, version, answer.predictions)
        if self.log is None:
            return
        now = time.time()
        scores = _scores(answer.probabilities)
        for index, row in enumerate(answer.rows):
            record = {
                "ts": now,
                "request_id": answer.request_id,
                "row": index,
                "model": model,
                "version": answer.served.version.version,
                "arm": arm,
                "client": client,
                "latency_ms": answer.seconds * 1000,
                "prediction": _plain(answer.predictions[index]),
                "score": scores[index] if scores is not None else None,
            }
            record.update({f"in_{n}": v for n, v in zip(answer.served.inputs, row, strict=True)})
            if not self.log.append("predictions", record):
                self.metrics.log_dropped.set(self.log.dropped)

    def record_error(
        self, model: str, served: Served, arm: str, client: str, seconds: float, exc: Exception
    ) -> None:
        """Log a failed request (kind ``errors``): the rollout analysis and the monitor
        count errors per version and arm from it, across replicas and restarts."""
        if self.log is None:
            return
        record = {
            "ts": time.time(),
            "request_id": uuid.uuid4().hex,
            "model": model,
            "version": served.version.version,
            "arm": arm,
            "client": client,
            "latency_ms": seconds * 1000,
            "error": f"{type(exc).__name__}: {exc}"[:500],
        }
        if not self.log.append("errors", record):
            self.metrics.log_dropped.set(self.log.dropped)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _scores(probabilities: Any) -> list[float] | None:
    """The positive-class probability (binary) or the top probability (multi-class)."""
    if probabilities is None:
        return None
    if probabilities.ndim == 2 and probabilities.shape[1] == 2:
        return [float(p) for p in probabilities[:, 1]]
    return [float(p) for p in probabilities.max(axis=1)]

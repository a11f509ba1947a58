"""The rollout controller: looks at every live rollout, decides, and moves traffic.

It keeps no state of its own. Each look reads the rollout from the store, the traffic
of the current step from the prediction log, decides (promote, hold, roll back), and
writes the decision as one compare-and-set with the routing change and the audit entry
(see ``state.py``). So it can run inside every gateway replica and as a separate
``shipyard rollout run`` at once, be killed at any instruction and restarted: the
restarted controller resumes from the stored step, and a decision can be applied once
only — a second controller's compare-and-set on the same revision fails.

Strategies:

- **canary** — the candidate takes each share in ``steps`` in turn; at every look the
  analysis compares it with stable on the same window (``analysis.py``). A rollback may
  come at any look; a promotion only after the step's minimum duration and requests.
- **bluegreen** — step 0 loads the candidate with no user traffic (a zero-weight arm,
  so every gateway loads and warms it) and smoke-tests it: the model loads here too and
  answers a sample of recently logged requests with sane outputs, and, when the
  gateway's address is known, ``/readyz`` and a pinned replay through the gateway
  itself. Then all traffic switches at once (step 1); the old version stays routed at
  weight 0, so loaded, for ``bluegreen.window`` — a switch back is instant.
- **ab** — a sticky split; the sequential test of ``abtest.py`` is read at every look
  (always valid, so watching does not inflate false winners); the winner is promoted
  when ``ab.promote: winner``.
- **shadow** — the candidate gets a copy of every request; after the duration, the
  agreement with production, its latency and error rate are the report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.core.routing import Arm, RoutingTable
from shipyard.errors import Conflict, NotFound, PolicyViolation
from shipyard.rollout.state import Rollout, RolloutStore
from shipyard.rollout.window import LogReader, Traffic, joined_labels

__all__ = ["Controller", "canary_table", "single_table"]

log = logging.getLogger("shipyard.rollout")

ACTOR = "rollout-controller"


def single_table(model: str, version: int, *, keep: int | None = None) -> RoutingTable:
    """All traffic to ``version``; ``keep`` stays routed at weight 0 (so loaded)."""
    arms = [Arm(version, 100.0)]
    if keep is not None and keep != version:
        arms.append(Arm(keep, 0.0))
    return RoutingTable(model=model, arms=tuple(arms))


def canary_table(
    model: str, stable: int, candidate: int, weight: float, sticky: str | None
) -> RoutingTable:
    """The candidate last: with a sticky key it holds the top of the key interval, so
    a user already on the candidate stays there as its share grows."""
    return RoutingTable(
        model=model,
        arms=(Arm(stable, 100.0 - weight), Arm(candidate, weight)),
        sticky=sticky,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Controller:
    def __init__(
        self,
        project: Any,
        *,
        log_dir: Path | None = None,
        gateway_url: str | None = None,
        actor: str = ACTOR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from shipyard.registry import open_registry

        self.project = project
        self.store = RolloutStore(project.metadata)
        self.registry = open_registry(project)
        self.reader = LogReader(log_dir or project.state_dir / "logs" / "serving")
        self.gateway_url = gateway_url
        self.actor = actor
        self.clock = clock
        self._pool: Any = None

    # --- the loop -----------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float | None = None) -> None:
        """Look at every live rollout every ``interval`` seconds until ``stop`` is set."""
        self.warm()
        while not stop.is_set():
            started = time.monotonic()
            live = self.tick()
            wait = interval if interval is not None else _interval(live)
            stop.wait(max(0.05, wait - (time.monotonic() - started)))

    @staticmethod
    def warm() -> None:
        """Import the analysis now (scipy takes seconds on a busy machine), so the
        first look at a new rollout is as quick as the others."""
        import shipyard.rollout.abtest
        import shipyard.rollout.analysis  # noqa: F401

    def tick(self) -> list[Rollout]:
        """One look at each running rollout; returns them as they are afterwards."""
        out = []
        try:
            live = self.store.live()
        except Exception as exc:  # the store is away: try again next tick
            log.warning("rollout controller cannot read the store: %s", exc)
            return []
        for rollout in live:
            if rollout.state != "running":
                out.append(rollout)
                continue
            try:
                out.append(self.look(rollout))
            except Conflict:  # someone moved it first; next look re-reads
                continue
            except Exception as exc:  # one broken rollout must not stop the others
                log.exception("rollout #%s: look failed", rollout.id)
                try:
                    out.append(self.fail(rollout, f"controller error: {exc}"))
                except Exception:
                    continue
        return out

    def look(self, rollout: Rollout) -> Rollout:
        handler = {
            "canary": self._canary,
            "bluegreen": self._bluegreen,
            "ab": self._ab,
            "shadow": self._shadow,
        }[rollout.strategy]
        return handler(rollout)

    # --- outcomes -----------------------------------------------------------------------
    def complete(self, rollout: Rollout, decision: dict[str, Any], reason: str) -> Rollout:
        """The candidate takes production: alias first (idempotent), then routing and
        state together. A crash between the two is finished by the next look."""
        ref = f"{rollout.model}:{rollout.candidate}"
        try:
            current = self.registry.get(f"{rollout.model}@production").version
        except NotFound:
            current = None
        if current != rollout.candidate:
            try:
                self.registry.set_alias(
                    ref,
                    "production",
                    actor=self._principal(rollout),
                    reason=f"rollout #{rollout.id} ({self.actor})",
                )
            except PolicyViolation as exc:
                return self.rollback(rollout, decision, f"cannot promote: {exc}")
        return self.store.update(
            rollout,
            actor=self.actor,
            action="rollout.complete",
            state="completed",
            step=len(rollout.steps) if rollout.strategy == "canary" else rollout.step + 1,
            table=single_table(rollout.model, rollout.candidate),
            decision=decision,
            reason=reason,
        )

    def rollback(
        self,
        rollout: Rollout,
        decision: dict[str, Any] | None,
        reason: str,
        *,
        state: str = "rolled_back",
        actor: str | None = None,
    ) -> Rollout:
        """Stable takes all traffic again; the alias goes back if the switch moved it."""
        if rollout.stable is None:
            table = None  # nothing to return to: keep routing, end the rollout
        else:
            table = single_table(rollout.model, rollout.stable)
            try:
                current = self.registry.get(f"{rollout.model}@production").version
            except NotFound:
                current = None
            if current == rollout.candidate:
                self.registry.set_alias(
                    f"{rollout.model}:{rollout.stable}",
                    "production",
                    actor=actor or self._principal(rollout),
                    reason=f"rollout #{rollout.id} ({self.actor}): {reason}",
                    action="rollback",
                    enforce=False,
                )
        return self.store.update(
            rollout,
            actor=actor or self.actor,
            action=f"rollout.{'abort' if state == 'aborted' else 'rollback'}",
            state=state,
            table=table,
            decision=decision,
            reason=reason,
        )

    @staticmethod
    def _principal(rollout: Rollout) -> str:
        """Whom the controller acts for in the registry: the user who started the
        rollout (their role was checked then, and governance still applies to each
        alias move); the controller's own name goes into the reason and audit entry."""
        return rollout.created_by

    def fail(self, rollout: Rollout, reason: str) -> Rollout:
        """Fail closed: an error in the analysis itself returns traffic to stable."""
        return self.rollback(rollout, {"at": _now(), "action": "rollback", "error": reason}, reason)

    # --- canary -------------------------------------------------------------------------
    def _canary(self, rollout: Rollout) -> Rollout:
        from shipyard.rollout.analysis import analyse

        assert rollout.stable is not None
        since = rollout.step_started_at.timestamp()
        elapsed = self.clock() - since
        labels = self.reader.labels(rollout.model, since)
        stable = self._arm(rollout.model, rollout.stable, since, labels)
        canary = self._arm(rollout.model, rollout.candidate, since, labels)
        policy = self._policy(rollout)
        verdict = analyse(stable, canary, policy, elapsed_s=elapsed)
        decision = {
            "at": _now(),
            "step": rollout.step,
            "weight": rollout.weight,
            "elapsed_s": round(elapsed, 3),
            **verdict.to_json(),
        }
        if verdict.action == "rollback":
            return self.rollback(rollout, decision, "; ".join(verdict.reasons) or "analysis")
        if verdict.action == "promote":
            steps = rollout.steps
            following = rollout.step + 1
            if following < len(steps) and steps[following] < 100:
                return self.store.update(
                    rollout,
                    actor=self.actor,
                    action="rollout.promote",
                    step=following,
                    table=canary_table(
                        rollout.model,
                        rollout.stable,
                        rollout.candidate,
                        steps[following],
                        rollout.spec.get("sticky"),
                    ),
                    decision=decision,
                )
            return self.complete(rollout, decision, "every step passed its analysis")
        return self.store.update(rollout, actor=self.actor, action=None, decision=decision)

    @staticmethod
    def _policy(rollout: Rollout) -> Any:
        """The rollout's analysis policy, told how often the controller looks."""
        from shipyard.rollout.policy import CanaryPolicy

        analysis = dict(rollout.spec.get("analysis", {}))
        analysis.setdefault("look_interval", f"{float(rollout.spec.get('interval_s', 1.0))}s")
        return CanaryPolicy.from_config(analysis, float(rollout.spec["step_duration_s"]))

    def _arm(
        self, model: str, version: int, since: float, labels: dict[tuple[str, int], str]
    ) -> Any:
        from shipyard.rollout.analysis import ArmWindow

        traffic = self.reader.traffic(model, version, since)
        truth, predicted = joined_labels(traffic, labels)
        return ArmWindow(
            requests=traffic.requests,
            errors=traffic.errors,
            latencies_ms=traffic.latencies_ms,
            predictions=traffic.predictions,
            labels=truth if len(truth) else None,
            labelled_predictions=predicted if len(truth) else None,
        )

    # --- blue-green ---------------------------------------------------------------------
    def _bluegreen(self, rollout: Rollout) -> Rollout:
        assert rollout.stable is not None
        elapsed = self.clock() - rollout.step_started_at.timestamp()
        if rollout.step == 0:
            if elapsed < float(rollout.spec.get("warmup_s", 1.0)):
                return rollout  # let the gateways notice the zero-weight arm and load it
            report = self.smoke_test(rollout)
            decision = {"at": _now(), "step": 0, "smoke_test": report}
            if not report["passed"]:
                return self.rollback(rollout, decision, f"smoke test failed: {report['problem']}")
            self.registry.set_alias(
                f"{rollout.model}:{rollout.candidate}",
                "production",
                actor=self._principal(rollout),
                reason=f"rollout #{rollout.id} ({self.actor}): blue-green switch",
            )
            return self.store.update(
                rollout,
                actor=self.actor,
                action="rollout.switch",
                step=1,
                table=single_table(rollout.model, rollout.candidate, keep=rollout.stable),
                decision={**decision, "action": "switch"},
            )
        # step 1: all traffic on the candidate; the old version stays loaded
        since = rollout.step_started_at.timestamp()
        traffic = self.reader.traffic(rollout.model, rollout.candidate, since)
        bound = self._policy(rollout).error_rate
        bound = 0.01 if bound is None else bound
        rate = traffic.errors / traffic.requests if traffic.requests else 0.0
        decision = {
            "at": _now(),
            "step": 1,
            "smoke_test": (rollout.last_decision or {}).get("smoke_test"),
            "elapsed_s": round(elapsed, 3),
            "requests": traffic.requests,
            "errors": traffic.errors,
            "error_rate": rate,
            "error_bound": bound,
            "p99_ms": _p99(traffic.latencies_ms),
        }
        if traffic.requests >= 20 and _binomial_exceeds(traffic.errors, traffic.requests, bound):
            return self.rollback(
                rollout,
                {**decision, "action": "rollback"},
                f"error rate {rate:.1%} after the switch is above {bound:.1%}; switched back",
            )
        if elapsed >= float(rollout.spec.get("window_s", 600)):
            return self.store.update(
                rollout,
                actor=self.actor,
                action="rollout.complete",
                state="completed",
                step=2,
                table=single_table(rollout.model, rollout.candidate),
                decision={**decision, "action": "complete"},
                reason="the switch-back window passed; the old version is unloaded",
            )
        return self.store.update(
            rollout, actor=self.actor, action=None, decision={**decision, "action": "hold"}
        )

    def smoke_test(self, rollout: Rollout) -> dict[str, Any]:
        """Load the candidate, replay recent requests, check the outputs are sane."""
        report: dict[str, Any] = {"passed": False, "problem": None, "checks": []}

        def check(name: str, passed: bool, detail: str) -> bool:
            report["checks"].append({"name": name, "passed": passed, "detail": detail})
            if not passed and report["problem"] is None:
                report["problem"] = f"{name}: {detail}"
            return passed

        try:
            served = self._served(rollout.model, rollout.candidate)
        except Exception as exc:
            check("load", False, str(exc))
            return report
        check("load", True, f"{served.label} loaded ({served.version.format})")
        rows, stable_predictions = self.recent_requests(
            rollout.model, rollout.stable, int(rollout.spec.get("replay", 50)), served.inputs
        )
        if rows:
            try:
                predictions, _ = served.predict_rows(rows)
            except Exception as exc:
                check("replay", False, f"the model failed on logged requests: {exc}")
                return report
            values = np.asarray(predictions)
            finite = (
                bool(np.isfinite(values.astype(float)).all())
                if values.dtype.kind in "fiub"
                else True
            )
            if not check(
                "replay",
                finite and len(values) == len(rows),
                f"{len(values)} logged requests answered",
            ):
                return report
            seen = {str(p) for p in stable_predictions}
            new = {str(p) for p in values} - seen
            if values.dtype.kind not in "f" and seen:
                check(
                    "outputs",
                    not new,
                    "no output outside those production gives"
                    if not new
                    else f"outputs production never gives: {sorted(new)[:5]}",
                )
            agreement = float(
                np.mean([str(a) == str(b) for a, b in zip(values, stable_predictions, strict=True)])
            )
            report["agreement"] = agreement
        else:
            check("replay", True, "no logged requests to replay yet: load checked only")
        if self.gateway_url:
            self._gateway_checks(rollout, rows, check)
        report["passed"] = report["problem"] is None
        return report

    def _gateway_checks(
        self, rollout: Rollout, rows: list[list[Any]], check: Callable[[str, bool, str], bool]
    ) -> None:
        import httpx

        try:
            with httpx.Client(base_url=self.gateway_url, timeout=10) as client:
                ready = client.get("/readyz")
                if not check("health", ready.status_code == 200, f"/readyz {ready.status_code}"):
                    return
                if rows:
                    answer = client.post(
                        f"/v1/models/{rollout.model}/predict",
                        params={"version": rollout.candidate},
                        json={"instances": rows[:10]},
                    )
                    check(
                        "gateway replay",
                        answer.status_code == 200,
                        f"pinned replay through the gateway: HTTP {answer.status_code}",
                    )
        except httpx.HTTPError as exc:
            check("health", False, f"gateway at {self.gateway_url} unreachable: {exc}")

    def _served(self, model: str, version: int) -> Any:
        if self._pool is None:
            from shipyard.serving.pool import ModelPool

            self._pool = ModelPool(self.registry, self.project.state_dir / "cache" / "models")
        return self._pool.get(model, version)

    def recent_requests(
        self, model: str, version: int | None, limit: int, inputs: list[str]
    ) -> tuple[list[list[Any]], list[Any]]:
        """Up to ``limit`` logged rows served by ``version`` in the last hour."""
        import pyarrow.parquet as pq

        paths = self.reader.files("predictions", model, self.clock() - 3600)
        rows: list[list[Any]] = []
        outputs: list[Any] = []
        columns = [f"in_{name}" for name in inputs]
        for path in reversed(paths):
            try:
                table = pq.read_table(path)
            except (OSError, ValueError):
                continue
            if not set(columns) <= set(table.column_names):
                continue
            data = table.to_pydict()
            for index in range(table.num_rows - 1, -1, -1):
                if version is not None and data["version"][index] != version:
                    continue
                rows.append([data[c][index] for c in columns])
                outputs.append(data["prediction"][index])
                if len(rows) >= limit:
                    return rows, outputs
        return rows, outputs

    # --- A/B ----------------------------------------------------------------------------
    def _ab(self, rollout: Rollout) -> Rollout:
        from shipyard.rollout.abtest import sequential_ab

        assert rollout.stable is not None
        since = rollout.step_started_at.timestamp()
        elapsed = self.clock() - since
        settings = rollout.spec.get("ab", {})
        labels = self.reader.labels(rollout.model, since)
        a = self.reader.traffic(rollout.model, rollout.stable, since)
        b = self.reader.traffic(rollout.model, rollout.candidate, since)
        result = sequential_ab(
            _ab_samples(a, labels, settings.get("metric", "accuracy")),
            _ab_samples(b, labels, settings.get("metric", "accuracy")),
            metric=settings.get("metric", "accuracy"),
            alpha=float(settings.get("alpha", 0.05)),
            min_samples=int(settings.get("min_samples", 100)),
        )
        decision = {
            "at": _now(),
            "elapsed_s": round(elapsed, 3),
            "requests": {"a": a.requests, "b": b.requests},
            "plan": _ab_plan(settings, _ab_samples(a, labels, settings.get("metric", "accuracy"))),
            **result.to_json(),
        }
        winner = result.decision
        if winner == "b" and settings.get("promote", "winner") == "winner":
            return self.complete(rollout, decision, f"B (version {rollout.candidate}) won")
        if winner == "a":
            return self.rollback(
                rollout, decision, f"A (version {rollout.stable}) won: the candidate is worse"
            )
        if elapsed >= float(settings.get("max_duration_s", 7 * 86400)):
            return self.rollback(
                rollout,
                decision,
                "no significant difference within the experiment's maximum duration",
                state="aborted",
            )
        return self.store.update(rollout, actor=self.actor, action=None, decision=decision)

    # --- shadow -------------------------------------------------------------------------
    def _shadow(self, rollout: Rollout) -> Rollout:
        assert rollout.stable is not None
        since = rollout.step_started_at.timestamp()
        elapsed = self.clock() - since
        report = self.shadow_report(rollout, since)
        decision = {"at": _now(), "elapsed_s": round(elapsed, 3), **report}
        settings = rollout.spec.get("shadow", {})
        if elapsed >= float(settings.get("duration_s", 600)) and report["shadow"][
            "requests"
        ] >= int(settings.get("min_requests", 100)):
            return self.store.update(
                rollout,
                actor=self.actor,
                action="rollout.shadow_report",
                state="completed",
                step=1,
                table=single_table(rollout.model, rollout.stable),
                decision={**decision, "action": "report"},
                reason=(
                    f"shadow finished: agreement {report['agreement']:.1%} over "
                    f"{report['compared']} rows; nobody was served by the candidate"
                    if report["agreement"] is not None
                    else "shadow finished without comparable rows"
                ),
            )
        return self.store.update(
            rollout, actor=self.actor, action=None, decision={**decision, "action": "hold"}
        )

    def shadow_report(self, rollout: Rollout, since: float) -> dict[str, Any]:
        assert rollout.stable is not None
        live = self.reader.traffic(rollout.model, rollout.stable, since)
        shadow = self.reader.traffic(rollout.model, rollout.candidate, since, arms=("shadow",))
        production = {
            (str(r), int(i)): str(p)
            for r, i, p in zip(live.request_ids, live.rows, live.predictions, strict=True)
        }
        same = compared = 0
        for rid, row, prediction in zip(
            shadow.request_ids, shadow.rows, shadow.predictions, strict=True
        ):
            other = production.get((str(rid), int(row)))
            if other is not None:
                compared += 1
                same += other == str(prediction)
        return {
            "agreement": same / compared if compared else None,
            "compared": compared,
            "production": _arm_summary(live),
            "shadow": _arm_summary(shadow),
        }


def _interval(live: list[Rollout]) -> float:
    """The shortest look interval any live rollout asks for (1 s when none is live)."""
    return min((float(r.spec.get("interval_s", 1.0)) for r in live), default=1.0)


def _arm_summary(traffic: Traffic) -> dict[str, Any]:
    return {
        "requests": traffic.requests,
        "errors": traffic.errors,
        "error_rate": traffic.errors / traffic.requests if traffic.requests else None,
        "p50_ms": float(np.percentile(traffic.latencies_ms, 50))
        if len(traffic.latencies_ms)
        else None,
        "p99_ms": _p99(traffic.latencies_ms),
    }


def _ab_samples(traffic: Traffic, labels: dict[tuple[str, int], str], metric: str) -> np.ndarray:
    """Per-observation values of the A/B metric (higher is better for accuracy)."""
    if metric == "accuracy":
        truth, predicted = joined_labels(traffic, labels)
        return (truth == predicted).astype(np.float64)
    if metric == "error_rate":
        return np.concatenate(
            [np.zeros(traffic.requests - traffic.errors), np.ones(traffic.errors)]
        )
    return traffic.latencies_ms.astype(np.float64)


def _ab_plan(settings: dict[str, Any], control: np.ndarray) -> dict[str, Any]:
    """The fixed-horizon sample size per arm for the configured effect and power, from
    what A shows so far (a proportion's baseline, a mean's spread): how long the
    experiment should run if nobody watched it; the sequential test may stop sooner."""
    from shipyard.rollout.abtest import sample_size

    mde = float(settings.get("mde", 0.02))
    power = float(settings.get("power", 0.8))
    alpha = float(settings.get("alpha", 0.05))
    plan: dict[str, Any] = {"mde": mde, "power": power, "alpha": alpha, "per_arm": None}
    finite = control[np.isfinite(control)] if len(control) else control
    if len(finite) < 10:
        return {**plan, "note": "waiting for 10 observations on A to plan"}
    if settings.get("metric", "accuracy") == "latency":
        sd = float(np.std(finite, ddof=1)) or 1.0
        plan["per_arm"] = sample_size(float(np.mean(finite)), mde, alpha, power, kind="mean", sd=sd)
    else:
        baseline = min(max(float(np.mean(finite)), 0.001), 0.999 - mde)
        plan["per_arm"] = sample_size(baseline, mde, alpha, power, kind="proportion")
    return plan


def _p99(latencies: np.ndarray) -> float | None:
    return float(np.percentile(latencies, 99)) if len(latencies) else None


def _binomial_exceeds(errors: int, requests: int, bound: float, alpha: float = 0.001) -> bool:
    """True when the error rate is significantly above ``bound`` (one-sided)."""
    from scipy.stats import binom

    return bool(binom.sf(errors - 1, requests, bound) < alpha)

"""What the CLI, the admin API, the dashboard and the monitor call to deploy and to stop.

``start_rollout`` checks governance before any routing changes: a version that needs
approval for production never receives user traffic (shadow excepted: no user sees a
shadow's answers). The manual operations retry their compare-and-set a few times, since
the controller updates a running rollout's numbers at every look.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.config import DeployConfig, duration_seconds
from shipyard.core.routing import Arm, RoutingTable
from shipyard.errors import Conflict, NotFound, PolicyViolation, UsageError
from shipyard.rollout.controller import Controller, canary_table, single_table
from shipyard.rollout.state import Rollout, RolloutStore

__all__ = [
    "abort",
    "pause",
    "plan",
    "promote",
    "resume",
    "rollback",
    "start_rollout",
    "status",
]

STRATEGIES = ("canary", "bluegreen", "ab", "shadow")


def plan(deploy: DeployConfig, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rollout's spec: the deploy config with durations in seconds, stored with the
    rollout so a later config edit does not change a rollout already running."""
    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    steps = [float(s) for s in o.get("steps", deploy.steps)]
    if not steps or steps != sorted(set(steps)) or not all(0 < s <= 100 for s in steps):
        raise UsageError(f"steps {steps} must increase strictly within (0, 100]")
    try:
        step_duration = duration_seconds(o.get("step_duration", deploy.step_duration))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from shipyard.rollout.policy import validate_analysis

    analysis = dict(deploy.analysis)
    try:
        validate_analysis(analysis)
    except ValueError as exc:
        raise UsageError(f"deploy.analysis: {exc}") from None
    sticky = o.get("sticky", deploy.sticky_key)
    return {
        "steps": steps,
        "step_duration_s": step_duration,
        "interval_s": duration_seconds(deploy.interval),
        "analysis": analysis,
        "sticky": sticky,
        "window_s": duration_seconds(deploy.bluegreen.window),
        "replay": deploy.bluegreen.replay,
        "warmup_s": 1.0,
        "ab": {
            **deploy.ab.model_dump(exclude={"max_duration"}),
            "max_duration_s": duration_seconds(deploy.ab.max_duration),
        },
        "shadow": {
            "duration_s": duration_seconds(deploy.shadow.duration),
            "min_requests": deploy.shadow.min_requests,
        },
    }


def _stable(project: Any, registry: Any, model: str) -> int | None:
    """The version users get now: production, else the routing table's main arm."""
    try:
        return int(registry.get(f"{model}@production").version)
    except NotFound:
        pass
    try:
        table, _ = RolloutStore(project.metadata).control.get_table(model)
    except NotFound:
        return None
    return max(table.arms, key=lambda a: a.weight).version


def start_rollout(
    project: Any,
    model: str,
    version: int,
    *,
    actor: str,
    strategy: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start deploying ``model:version``; returns the rollout as JSON."""
    from shipyard.registry import open_registry

    deploy = project.config.deploy
    strategy = strategy or deploy.strategy
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    registry = open_registry(project)
    registry.users.require(actor, "deploy")
    candidate = registry.get(f"{model}:{version}")
    if candidate.status == "archived":
        raise PolicyViolation(f"{candidate.ref} is archived and cannot be deployed")
    stable = _stable(project, registry, model)
    if stable == version:
        raise UsageError(f"{candidate.ref} already serves production; nothing to deploy")
    if strategy != "shadow":
        missing = registry.missing(candidate.ref, "production")
        if missing:
            raise PolicyViolation(
                f"{candidate.ref} may not receive production traffic yet: " + "; ".join(missing),
                hint="give it what governance asks for production (approvals: shipyard "
                f"approve {candidate.ref}; gate results: shipyard check, then register with "
                "--gates), or deploy with --strategy shadow to compare it unseen",
            )
    spec = plan(deploy, overrides)
    store = RolloutStore(project.metadata)
    if stable is None:
        if strategy == "shadow":
            raise UsageError(
                f"'{model}' has no production version to shadow",
                hint="deploy a first version with --strategy bluegreen or canary",
            )
        # A first deployment has nothing to compare with: it takes all traffic at once.
        rollout = store.create(
            model=model,
            candidate=version,
            stable=None,
            strategy=strategy,
            spec=spec,
            actor=actor,
            table=single_table(model, version),
        )
        controller = Controller(project, actor=actor)
        done = controller.complete(
            rollout, {"action": "complete"}, "first deployment: no production version to compare"
        )
        return done.to_json()
    if strategy == "canary":
        table = canary_table(model, stable, version, spec["steps"][0], spec["sticky"])
    elif strategy == "bluegreen":
        table = single_table(model, stable, keep=version)
    elif strategy == "ab":
        split = float(spec["ab"]["split"])
        sticky = spec["sticky"] or "header:x-user-id"
        spec["sticky"] = sticky
        table = RoutingTable(
            model=model,
            arms=(Arm(stable, 100.0 - split), Arm(version, split)),
            sticky=sticky,
        )
    else:
        table = RoutingTable(model=model, arms=(Arm(stable, 100.0),), shadows=(version,))
    return store.create(
        model=model,
        candidate=version,
        stable=stable,
        strategy=strategy,
        spec=spec,
        actor=actor,
        table=table,
    ).to_json()


def status(project: Any, model: str | None = None) -> list[dict[str, Any]]:
    store = RolloutStore(project.metadata)
    if model is None:
        return [r.to_json() for r in store.live()]
    return [store.current(model).to_json()]


def _retry(
    project: Any, model: str, apply: Callable[[Rollout], Rollout], *, live: bool = True
) -> dict[str, Any]:
    store = RolloutStore(project.metadata)
    for _ in range(20):
        found = store.live(model)
        if not found and live:
            raise NotFound(
                f"model '{model}' has no live rollout",
                hint="see its last one with shipyard rollout status " + model,
            )
        try:
            return apply(found[0]).to_json()
        except Conflict:
            continue
    raise Conflict(f"the rollout of '{model}' kept changing; try again")


def pause(project: Any, model: str, *, actor: str) -> dict[str, Any]:
    def apply(rollout: Rollout) -> Rollout:
        if rollout.state == "paused":
            return rollout
        return RolloutStore(project.metadata).update(
            rollout, actor=actor, action="rollout.pause", state="paused"
        )

    _require(project, actor)
    return _retry(project, model, apply)


def resume(project: Any, model: str, *, actor: str) -> dict[str, Any]:
    """Resume; the step's window restarts, so the analysis sees fresh traffic only."""

    def apply(rollout: Rollout) -> Rollout:
        if rollout.state == "running":
            return rollout
        return RolloutStore(project.metadata).update(
            rollout, actor=actor, action="rollout.resume", state="running", restart_step=True
        )

    _require(project, actor)
    return _retry(project, model, apply)


def promote(project: Any, model: str, *, actor: str) -> dict[str, Any]:
    """Skip the remaining analysis: the candidate takes production now (policy still
    applies: the alias move is refused for a version that lacks approvals)."""

    def apply(rollout: Rollout) -> Rollout:
        controller = Controller(project, actor=actor)
        if rollout.strategy == "shadow":
            raise UsageError(
                "a shadow rollout has no users to promote to",
                hint="deploy the version with --strategy canary or bluegreen",
            )
        decision = {"action": "promote", "manual": True, "by": actor}
        registry = controller.registry
        missing = registry.missing(f"{rollout.model}:{rollout.candidate}", "production")
        if missing:
            raise PolicyViolation(
                f"{rollout.model}:{rollout.candidate} cannot take production: " + "; ".join(missing)
            )
        return controller.complete(rollout, decision, f"promoted by {actor}")

    _require(project, actor)
    return _retry(project, model, apply)


def abort(project: Any, model: str, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    def apply(rollout: Rollout) -> Rollout:
        return Controller(project, actor=actor).rollback(
            rollout,
            {"action": "abort", "by": actor},
            reason or f"aborted by {actor}",
            state="aborted",
            actor=actor,
        )

    _require(project, actor)
    return _retry(project, model, apply)


def rollback(project: Any, model: str, *, actor: str, reason: str) -> dict[str, Any]:
    """The previous production version takes all traffic now.

    With a live rollout, that is the rollout's stable version (the rollout ends as
    rolled back). Without one, the production alias steps back through its history and
    the routing table follows it in the same breath.
    """
    from shipyard.registry import open_registry

    _require(project, actor)
    store = RolloutStore(project.metadata)
    for _ in range(20):
        live = store.live(model)
        if not live:
            break
        try:
            controller = Controller(project, actor=actor)
            done = controller.rollback(
                live[0], {"action": "rollback", "by": actor}, reason, actor=actor
            )
            return {"rollout": done.to_json(), "version": live[0].stable}
        except Conflict:
            continue
    registry = open_registry(project)
    version = registry.rollback(model, actor=actor)
    store.control.set_table(single_table(model, version.version), actor=actor)
    return {"rollout": None, "version": version.version}


def _require(project: Any, actor: str) -> None:
    """Steering a live rollout needs the role that may move an alias (developers,
    approvers, admins); starting one needs "deploy"."""
    from shipyard.registry.users import UserDirectory

    UserDirectory(project.metadata).require(actor, "alias")

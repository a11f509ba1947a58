"""Rollouts in the metadata store: one row per deployment, moved by compare-and-set.

Every change of a rollout — a step, a pause, a rollback — is one transaction that
checks and bumps the row's ``revision``, rewrites the model's routing table when
traffic moves, and appends the audit entry. So a controller killed at any point leaves
either the old state with the old routing or the new state with the new routing, and
two controllers (a restarted one and its ghost, or two gateway replicas) can never both
apply the same decision: the second one's compare-and-set fails and it re-reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shipyard.core.routing import RoutingTable
from shipyard.errors import Conflict, NotFound
from shipyard.serving.control import ControlPlane
from shipyard.store import schema
from shipyard.store.metadata import MetadataStore, as_utc

__all__ = ["LIVE", "Rollout", "RolloutStore"]

# Live states hold the model's ``active_model`` slot; the others are final.
LIVE = ("running", "paused")
FINAL = ("completed", "rolled_back", "aborted")


@dataclass(frozen=True)
class Rollout:
    id: int
    model: str
    candidate: int
    stable: int | None
    strategy: str
    state: str
    step: int
    step_started_at: datetime
    spec: dict[str, Any]
    last_decision: dict[str, Any] | None
    reason: str | None
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    finished_at: datetime | None

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def steps(self) -> list[float]:
        return [float(s) for s in self.spec.get("steps", [])]

    @property
    def weight(self) -> float:
        """The candidate's share of user traffic at the current step (percent)."""
        if self.strategy == "canary":
            steps = self.steps
            return steps[min(self.step, len(steps) - 1)] if steps else 100.0
        if self.strategy == "ab":
            return float(self.spec.get("ab", {}).get("split", 50.0))
        if self.strategy == "bluegreen":
            return 100.0 if self.step >= 1 else 0.0
        return 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "candidate": self.candidate,
            "stable": self.stable,
            "strategy": self.strategy,
            "state": self.state,
            "step": self.step,
            "weight": self.weight if self.live else None,
            "step_started_at": self.step_started_at.isoformat(),
            "spec": self.spec,
            "last_decision": self.last_decision,
            "reason": self.reason,
            "revision": self.revision,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def _row(row: Any) -> Rollout:
    return Rollout(
        id=int(row.id),
        model=row.model,
        candidate=int(row.candidate),
        stable=None if row.stable is None else int(row.stable),
        strategy=row.strategy,
        state=row.state,
        step=int(row.step),
        step_started_at=as_utc(row.step_started_at),
        spec=dict(row.spec or {}),
        last_decision=row.last_decision,
        reason=row.reason,
        revision=int(row.revision),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        updated_at=as_utc(row.updated_at),
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
    )


class RolloutStore:
    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata
        self.control = ControlPlane(metadata)

    # --- reading ------------------------------------------------------------------------
    def get(self, rollout_id: int) -> Rollout:
        r = schema.rollouts
        with self.metadata.transaction(write=False) as tx:
            row = tx.execute(sa.select(r).where(r.c.id == rollout_id)).first()
        if row is None:
            raise NotFound(f"no rollout #{rollout_id}", hint="list them with shipyard rollout list")
        return _row(row)

    def live(self, model: str | None = None) -> list[Rollout]:
        r = schema.rollouts
        query = sa.select(r).where(r.c.active_model.is_not(None)).order_by(r.c.id)
        if model is not None:
            query = query.where(r.c.model == model)
        with self.metadata.transaction(write=False) as tx:
            return [_row(row) for row in tx.execute(query)]

    def current(self, model: str) -> Rollout:
        """The model's live rollout, else its latest one."""
        r = schema.rollouts
        query = sa.select(r).where(r.c.model == model)
        with self.metadata.transaction(write=False) as tx:
            row = tx.execute(
                query.order_by(r.c.active_model.is_(None), r.c.id.desc()).limit(1)
            ).first()
        if row is None:
            raise NotFound(
                f"model '{model}' has no rollouts", hint="start one with shipyard deploy"
            )
        return _row(row)

    def history(self, model: str | None = None, limit: int = 100) -> list[Rollout]:
        r = schema.rollouts
        query = sa.select(r).order_by(r.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(r.c.model == model)
        with self.metadata.transaction(write=False) as tx:
            return [_row(row) for row in tx.execute(query)]

    # --- writing ------------------------------------------------------------------------
    def create(
        self,
        *,
        model: str,
        candidate: int,
        stable: int | None,
        strategy: str,
        spec: Mapping[str, Any],
        actor: str,
        table: RoutingTable,
    ) -> Rollout:
        """Start a rollout and its first routing in one transaction."""
        r = schema.rollouts
        try:
            with self.metadata.transaction() as tx:
                now = self.metadata.clock()
                rollout_id = tx.execute(
                    r.insert().values(
                        model=model,
                        active_model=model,
                        candidate=candidate,
                        stable=stable,
                        strategy=strategy,
                        state="running",
                        step=0,
                        step_started_at=now,
                        spec=dict(spec),
                        revision=1,
                        created_at=now,
                        created_by=actor,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
                self.control.set_table(table, actor=actor, conn=tx)
                self.metadata.append_event(
                    actor,
                    "rollout.start",
                    f"{model}:{candidate}",
                    {
                        "rollout": rollout_id,
                        "strategy": strategy,
                        "stable": stable,
                        "routing": table.to_json(),
                        "spec": dict(spec),
                    },
                    conn=tx,
                )
        except IntegrityError:
            live = self.live(model)
            raise Conflict(
                f"model '{model}' already has a live rollout"
                + (
                    f" (#{live[0].id}: version {live[0].candidate}, {live[0].state})"
                    if live
                    else ""
                ),
                hint="wait for it to end, or stop it with shipyard rollout abort " + model,
            ) from None
        return self.get(int(rollout_id))

    def update(
        self,
        rollout: Rollout,
        *,
        actor: str,
        action: str | None,
        state: str | None = None,
        step: int | None = None,
        table: RoutingTable | None = None,
        decision: Mapping[str, Any] | None = None,
        reason: str | None = None,
        restart_step: bool = False,
    ) -> Rollout:
        """Apply one change as a compare-and-set on the rollout's revision.

        ``action`` names the audit entry (None: a bookkeeping update with no audit
        entry, e.g. the numbers of a 'hold'). Raises Conflict when someone else moved
        the rollout first: re-read it and decide again.
        """
        r = schema.rollouts
        with self.metadata.transaction() as tx:
            now = self.metadata.clock()
            values: dict[str, Any] = {"revision": rollout.revision + 1, "updated_at": now}
            if state is not None:
                values["state"] = state
                if state in FINAL:
                    values["active_model"] = None
                    values["finished_at"] = now
            if step is not None:
                values["step"] = step
            if step is not None or restart_step:
                values["step_started_at"] = now
            if decision is not None:
                values["last_decision"] = dict(decision)
            if reason is not None:
                values["reason"] = reason
            result = tx.execute(
                r.update()
                .where(r.c.id == rollout.id, r.c.revision == rollout.revision)
                .values(values)
            )
            if result.rowcount != 1:
                raise Conflict(
                    f"rollout #{rollout.id} of '{rollout.model}' changed meanwhile",
                    hint="read its state again (shipyard rollout status) and retry",
                )
            if table is not None:
                self.control.set_table(table, actor=actor, conn=tx)
            if action is not None:
                details: dict[str, Any] = {
                    "rollout": rollout.id,
                    "from_state": rollout.state,
                    "state": state or rollout.state,
                    "step": rollout.step if step is None else step,
                }
                if table is not None:
                    details["routing"] = table.to_json()
                if decision is not None:
                    details["decision"] = dict(decision)
                if reason is not None:
                    details["reason"] = reason
                self.metadata.append_event(
                    actor, action, f"{rollout.model}:{rollout.candidate}", details, conn=tx
                )
        return self.get(rollout.id)

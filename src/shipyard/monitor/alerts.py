"""Alert rules and their state machine, kept in the ``alerts`` table.

Each rule, per model, moves ``pending`` (the condition holds) → ``firing`` (it has held
for the rule's ``for:``) → ``resolved`` (it no longer holds). A pending alert whose
condition clears before ``for:`` is resolved without ever being announced.

The open alert's row carries ``active_key`` (unique while pending or firing, NULL once
resolved), so the same condition cannot be open twice, and every move is a
compare-and-set on the row's state: when two monitors run at once, exactly one of them
wins each move and only the winner notifies. Firing and resolving are recorded in the
audit log in the same transaction as the state change.

Missing data (a condition that is *unknown*) moves nothing: an alert neither fires nor
resolves because the feedback is late or the traffic stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shipyard.config import duration_seconds
from shipyard.monitor.expr import Condition, parse_condition
from shipyard.store import schema
from shipyard.store.metadata import as_utc

if TYPE_CHECKING:
    from shipyard.config import AlertRule
    from shipyard.store.metadata import MetadataStore

__all__ = [
    "ACTOR",
    "Rule",
    "Transition",
    "duration_seconds",
    "evaluate_rules",
    "open_alerts",
    "record_action",
    "record_delivery",
    "rules_from_config",
]

ACTOR = "shipyard-monitor"


@dataclass(frozen=True)
class Rule:
    name: str
    condition: Condition
    hold: float  # seconds the condition must hold before firing (``for:``)
    severity: str = "warning"
    notify: tuple[str, ...] = ()
    action: str = "none"
    cooldown: float = 1800.0
    repeat: float | None = None
    summary: str | None = None


def rules_from_config(rules: Sequence[AlertRule]) -> list[Rule]:
    return [
        Rule(
            name=r.key,
            condition=parse_condition(r.when),
            hold=duration_seconds(r.for_),
            severity=r.severity,
            notify=tuple(r.notify),
            action=r.action,
            cooldown=duration_seconds(r.cooldown),
            repeat=duration_seconds(r.repeat) if r.repeat else None,
            summary=r.summary,
        )
        for r in rules
    ]


@dataclass(frozen=True)
class Transition:
    """Something a monitor pass must announce: ``firing``, ``resolved`` or ``repeat``."""

    kind: str
    alert_id: int
    rule: Rule
    model: str
    dedup_key: str
    started_at: datetime
    at: datetime
    values: dict[str, float | None] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "resolved" if self.kind == "resolved" else "firing"


def dedup_key(project: str, model: str, rule: str) -> str:
    return f"{project}/{model}/{rule}"[:200]


def evaluate_rules(
    metadata: MetadataStore,
    rules: Sequence[Rule],
    metrics: Mapping[str, float | None],
    *,
    project: str,
    model: str,
    now: datetime,
) -> list[Transition]:
    """Move every rule's alert for ``model`` one step; return what must be announced."""
    transitions = []
    for rule in rules:
        holds = rule.condition.evaluate(metrics)
        values = {n: metrics.get(n) for n in rule.condition.names}
        key = dedup_key(project, model, rule.name)
        moved = _step(metadata, rule, holds, key, model, now, values)
        if moved is not None:
            transitions.append(moved)
    return transitions


def _open_row(tx: sa.Connection, key: str) -> Any:
    table = schema.alerts
    return tx.execute(sa.select(table).where(table.c.active_key == key)).first()


def _step(
    metadata: MetadataStore,
    rule: Rule,
    holds: bool | None,
    key: str,
    model: str,
    now: datetime,
    values: dict[str, float | None],
) -> Transition | None:
    if holds is None:
        return None
    try:
        with metadata.transaction() as tx:
            row = _open_row(tx, key)
            if holds:
                return _holds(metadata, tx, row, rule, key, model, now, values)
            if row is not None:
                return _clears(metadata, tx, row, rule, model, now, values)
    except IntegrityError:
        return None  # another monitor opened the same alert at the same moment: it owns it
    return None


def _holds(
    metadata: MetadataStore,
    tx: sa.Connection,
    row: Any,
    rule: Rule,
    key: str,
    model: str,
    now: datetime,
    values: dict[str, float | None],
) -> Transition | None:
    table = schema.alerts
    if row is None:
        inserted = tx.execute(
            table.insert().values(
                rule=rule.name,
                model=model,
                dedup_key=key,
                active_key=key,
                severity=rule.severity,
                state="pending",
                started_at=now,
                details={"values": values, "condition": rule.condition.text},
                notified={},
                updated_at=now,
            )
        )
        row = _open_row(tx, key)
        assert row is not None and (row.id,) == tuple(inserted.inserted_primary_key or ())
    started = as_utc(row.started_at)
    assert started is not None
    if row.state == "pending" and now - started >= timedelta(seconds=rule.hold):
        return _fire(metadata, tx, row, rule, model, now, values)
    if row.state == "firing" and rule.repeat is not None:
        last = as_utc(row.updated_at) or started
        due = now - last >= timedelta(seconds=rule.repeat)
        if due and _cas(tx, row, "firing", updated_at=now, details=_details(row, values)):
            return Transition("repeat", row.id, rule, model, key, started, now, values)
    return None


def _details(row: Any, values: dict[str, float | None]) -> dict[str, Any]:
    return {**(row.details or {}), "values": values}


def _cas(tx: sa.Connection, row: Any, expected: str, **changes: Any) -> bool:
    """Change the row only if it is still in state ``expected``; True if this writer won."""
    table = schema.alerts
    result = tx.execute(
        table.update().where(table.c.id == row.id, table.c.state == expected).values(**changes)
    )
    return result.rowcount == 1


def _fire(
    metadata: MetadataStore,
    tx: sa.Connection,
    row: Any,
    rule: Rule,
    model: str,
    now: datetime,
    values: dict[str, float | None],
) -> Transition | None:
    details = _details(row, values)
    if not _cas(tx, row, "pending", state="firing", fired_at=now, updated_at=now, details=details):
        return None
    metadata.append_event(
        ACTOR,
        "alert.fire",
        f"{model}/{rule.name}",
        {"alert": row.id, "severity": rule.severity, "when": rule.condition.text, **values},
        conn=tx,
    )
    started = as_utc(row.started_at) or now
    return Transition("firing", row.id, rule, model, row.dedup_key, started, now, values)


def _clears(
    metadata: MetadataStore,
    tx: sa.Connection,
    row: Any,
    rule: Rule,
    model: str,
    now: datetime,
    values: dict[str, float | None],
) -> Transition | None:
    was_firing = row.state == "firing"
    changes = {
        "state": "resolved",
        "active_key": None,
        "resolved_at": now,
        "updated_at": now,
        "details": _details(row, values),
    }
    if not _cas(tx, row, row.state, **changes) or not was_firing:
        return None  # a pending alert that cleared was never announced
    metadata.append_event(
        ACTOR,
        "alert.resolve",
        f"{model}/{rule.name}",
        {"alert": row.id, "when": rule.condition.text, **values},
        conn=tx,
    )
    started = as_utc(row.started_at)
    return Transition("resolved", row.id, rule, model, row.dedup_key, started, now, values)  # type: ignore[arg-type]


def record_delivery(
    metadata: MetadataStore, alert_id: int, kind: str, results: Mapping[str, Any]
) -> None:
    """Keep each notifier's outcome on the alert row, keyed by transition kind."""
    table = schema.alerts
    with metadata.transaction() as tx:
        current = tx.execute(sa.select(table.c.notified).where(table.c.id == alert_id)).scalar()
        notified = dict(current or {})
        notified[kind] = dict(results)
        tx.execute(table.update().where(table.c.id == alert_id).values(notified=notified))
        failed = [name for name, r in results.items() if not r.get("ok")]
        if failed:
            metadata.append_event(
                ACTOR,
                "alert.notify_failed",
                f"alert/{alert_id}",
                {"kind": kind, "failed": {n: results[n].get("error") for n in failed}},
                conn=tx,
            )


def last_action_at(metadata: MetadataStore, rule: str, model: str, action: str) -> datetime | None:
    """When this rule last started ``action`` for this model (for the cool-down)."""
    table = schema.alerts
    query = (
        sa.select(table.c.action)
        .where(table.c.rule == rule, table.c.model == model, table.c.action.is_not(None))
        .order_by(table.c.id.desc())
        .limit(50)
    )
    with metadata.transaction(write=False) as tx:
        for (taken,) in tx.execute(query):
            if taken and taken.get("kind") == action and taken.get("at"):
                return datetime.fromisoformat(taken["at"])
    return None


def record_action(
    metadata: MetadataStore, alert_id: int, subject: str, outcome: Mapping[str, Any]
) -> None:
    """Keep an action's outcome on the alert and in the audit log, together."""
    table = schema.alerts
    with metadata.transaction() as tx:
        tx.execute(table.update().where(table.c.id == alert_id).values(action=dict(outcome)))
        metadata.append_event(
            ACTOR, f"monitor.{outcome['kind']}", subject, {"alert": alert_id, **outcome}, conn=tx
        )


def open_alerts(metadata: MetadataStore, model: str | None = None) -> list[dict[str, Any]]:
    """Pending and firing alerts, oldest first."""
    table = schema.alerts
    query = sa.select(table).where(table.c.active_key.is_not(None)).order_by(table.c.id)
    if model:
        query = query.where(table.c.model == model)
    with metadata.transaction(write=False) as tx:
        return [dict(row._mapping) for row in tx.execute(query)]

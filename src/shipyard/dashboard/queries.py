"""What the pages show, read from the metadata store with SQLAlchemy Core.

Every function here runs read-only transactions and returns plain dicts. Large JSON
columns (a version's full gate results with their embedded plots) are read only on
the one page that shows them; lists pull the few fields they need through JSON
extraction in the database, so a model with hundreds of versions stays one fast page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from shipyard.errors import NotFound
from shipyard.store import schema
from shipyard.store.metadata import MetadataStore, as_utc

__all__ = [
    "GateCache",
    "VersionCache",
    "alerts",
    "approvals",
    "events",
    "model_versions",
    "models_overview",
    "monitor_series",
    "routing_tables",
    "stage_history",
    "version_detail",
]


def models_overview(metadata: MetadataStore) -> list[dict[str, Any]]:
    m, v, a = schema.models, schema.model_versions, schema.aliases
    counts = (
        sa.select(
            v.c.model_id, sa.func.count().label("n"), sa.func.max(v.c.version).label("latest")
        )
        .group_by(v.c.model_id)
        .subquery()
    )
    query = (
        sa.select(m.c.id, m.c.name, m.c.description, m.c.created_at, counts.c.n, counts.c.latest)
        .outerjoin(counts, counts.c.model_id == m.c.id)
        .order_by(m.c.name)
    )
    alias_query = sa.select(a.c.model_id, a.c.alias, v.c.version).join(v, v.c.id == a.c.version_id)
    with metadata.transaction(write=False) as tx:
        rows = tx.execute(query).all()
        named: dict[int, list[str]] = defaultdict(list)
        for row in tx.execute(alias_query):
            named[row.model_id].append(f"{row.alias}→v{row.version}")
    return [
        {
            "name": r.name,
            "description": r.description,
            "created_at": as_utc(r.created_at),
            "versions": int(r.n or 0),
            "latest": r.latest,
            "aliases": sorted(named[r.id]),
        }
        for r in rows
    ]


def _model_id(tx: sa.Connection, name: str) -> int:
    found = tx.execute(sa.select(schema.models.c.id).where(schema.models.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no model named '{name}'", hint="the Models page lists them")
    return int(found)


GateCache = dict[int, tuple[bool | None, str | None]]


def _gate_summaries(tx: sa.Connection, ids: list[int], cache: GateCache) -> GateCache:
    """(passed, report id) per version id. A version's gate results never change after
    registration, so a summary read once is kept: the full documents (plots embedded,
    often 100 KB+) are parsed once per process, not on every page view."""
    v = schema.model_versions
    missing = [i for i in ids if i not in cache]
    if len(cache) + len(missing) > 200_000:  # bounded memory
        cache.clear()
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        query = sa.select(
            v.c.id,
            v.c.gates["passed"].as_boolean().label("passed"),
            v.c.gates["id"].as_string().label("report_id"),
        ).where(v.c.id.in_(chunk))
        for row in tx.execute(query):
            cache[row.id] = (row.passed, row.report_id)
    return cache


def model_versions(
    metadata: MetadataStore, name: str, gate_cache: GateCache | None = None
) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first, with gate outcome, approvals and aliases."""
    v, a, p = schema.model_versions, schema.aliases, schema.approvals
    columns = (
        v.c.id,
        v.c.version,
        v.c.status,
        v.c.created_at,
        v.c.created_by,
        v.c.description,
        v.c.tags,
        v.c.lineage["metrics"].label("metrics"),
    )
    with metadata.transaction(write=False) as tx:
        model_id = _model_id(tx, name)
        rows = tx.execute(
            sa.select(*columns).where(v.c.model_id == model_id).order_by(v.c.version.desc())
        ).all()
        gates = _gate_summaries(tx, [r.id for r in rows], {} if gate_cache is None else gate_cache)
        aliases: dict[int, list[str]] = defaultdict(list)
        for row in tx.execute(sa.select(a.c.alias, a.c.version_id).where(a.c.model_id == model_id)):
            aliases[row.version_id].append(row.alias)
        decisions: dict[int, dict[str, int]] = defaultdict(lambda: {"approve": 0, "reject": 0})
        query = (
            sa.select(p.c.version_id, p.c.decision, sa.func.count().label("n"))
            .join(v, v.c.id == p.c.version_id)
            .where(v.c.model_id == model_id)
            .group_by(p.c.version_id, p.c.decision)
        )
        for row in tx.execute(query):
            decisions[row.version_id][row.decision] = int(row.n)
    return [
        {
            "version": r.version,
            "status": r.status,
            "created_at": as_utc(r.created_at),
            "created_by": r.created_by,
            "description": r.description,
            "tags": r.tags or {},
            "metrics": r.metrics if isinstance(r.metrics, dict) else {},
            "gates_passed": gates[r.id][0],
            "report_id": gates[r.id][1],
            "aliases": sorted(aliases[r.id]),
            "approvals": decisions[r.id]["approve"],
            "rejections": decisions[r.id]["reject"],
        }
        for r in rows
    ]


class VersionCache:
    """Each model's version list, kept until the audit log grows.

    Every registry change appends its audit entry in the same transaction, so while
    the newest audit sequence number stays put, no version, alias or approval changed
    and the list read last time is still true. On SQLite, reading a version's later
    columns means walking past its gate document's overflow pages, so this turns a
    500-version page from hundreds of milliseconds of I/O into one indexed read.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.gates: GateCache = {}
        self._lists: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        self._pages: dict[str, tuple[int, str]] = {}

    @staticmethod
    def _head(metadata: MetadataStore) -> int:
        e = schema.events
        with metadata.transaction(write=False) as tx:
            return int(tx.execute(sa.select(sa.func.max(e.c.seq))).scalar() or 0)

    def versions(self, metadata: MetadataStore, name: str) -> list[dict[str, Any]]:
        head = self._head(metadata)
        cached = self._lists.get(name)
        if cached is not None and cached[0] == head:
            return cached[1]
        found = model_versions(metadata, name, self.gates)
        if len(self._lists) >= self.limit:
            self._lists.clear()
        self._lists[name] = (head, found)
        return found

    def page(
        self, metadata: MetadataStore, name: str, render: Callable[[list[dict[str, Any]]], str]
    ) -> str:
        """``render(versions)``, kept like the list itself: the same versions, aliases
        and approvals always render to the same markup."""
        head = self._head(metadata)
        cached = self._pages.get(name)
        if cached is not None and cached[0] == head:
            return cached[1]
        markup = render(self.versions(metadata, name))
        if len(self._pages) >= self.limit:
            self._pages.clear()
        self._pages[name] = (head, markup)
        return markup


def version_detail(metadata: MetadataStore, name: str, version: int) -> dict[str, Any]:
    v, a = schema.model_versions, schema.aliases
    with metadata.transaction(write=False) as tx:
        model_id = _model_id(tx, name)
        row = tx.execute(
            sa.select(v).where(v.c.model_id == model_id, v.c.version == version)
        ).first()
        if row is None:
            raise NotFound(f"model '{name}' has no version {version}")
        names = tx.execute(sa.select(a.c.alias).where(a.c.version_id == row.id)).scalars().all()
    detail = dict(row._mapping)
    detail["created_at"] = as_utc(detail["created_at"])
    detail["aliases"] = sorted(names)
    return detail


def approvals(metadata: MetadataStore, name: str, version: int) -> list[dict[str, Any]]:
    v, p, m = schema.model_versions, schema.approvals, schema.models
    query = (
        sa.select(p.c.alias, p.c.actor, p.c.role, p.c.decision, p.c.comment, p.c.at)
        .join(v, v.c.id == p.c.version_id)
        .join(m, m.c.id == v.c.model_id)
        .where(m.c.name == name, v.c.version == version)
        .order_by(p.c.at)
    )
    with metadata.transaction(write=False) as tx:
        return [{**r._mapping, "at": as_utc(r.at)} for r in tx.execute(query)]


def stage_history(metadata: MetadataStore, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Stage rows (timings, resources) of several runs in one query."""
    s = schema.stage_runs
    query = sa.select(
        s.c.run_id, s.c.stage, s.c.status, s.c.started_at, s.c.ended_at, s.c.resources
    ).where(s.c.run_id.in_(run_ids))
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with metadata.transaction(write=False) as tx:
        for r in tx.execute(query.order_by(s.c.id)):
            found[r.run_id].append(
                {
                    "stage": r.stage,
                    "status": r.status,
                    "started_at": as_utc(r.started_at),
                    "ended_at": as_utc(r.ended_at),
                    "resources": r.resources or {},
                }
            )
    return found


def monitor_series(metadata: MetadataStore, limit: int = 5000) -> list[dict[str, Any]]:
    """The newest monitor results, oldest first (for charts over time)."""
    t = schema.monitor_results
    query = sa.select(t).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
    with metadata.transaction(write=False) as tx:
        rows = [{**r._mapping, "at": as_utc(r.at)} for r in tx.execute(query)]
    return rows[::-1]


def alerts(metadata: MetadataStore, limit: int = 500) -> list[dict[str, Any]]:
    t = schema.alerts
    query = sa.select(t).order_by(t.c.resolved_at.is_not(None), t.c.started_at.desc()).limit(limit)
    with metadata.transaction(write=False) as tx:
        rows = [dict(r._mapping) for r in tx.execute(query)]
    for row in rows:
        for key in ("started_at", "fired_at", "resolved_at", "updated_at"):
            row[key] = as_utc(row[key])
    return rows


def events(metadata: MetadataStore, limit: int = 200) -> list[dict[str, Any]]:
    e = schema.events
    query = sa.select(e).order_by(e.c.seq.desc()).limit(limit)
    with metadata.transaction(write=False) as tx:
        return [{**r._mapping, "at": as_utc(r.at)} for r in tx.execute(query)]


def routing_tables(metadata: MetadataStore) -> dict[str, dict[str, Any]]:
    r = schema.routing_tables
    with metadata.transaction(write=False) as tx:
        return {
            row.model: {**row.spec, "revision": int(row.revision)}
            for row in tx.execute(sa.select(r.c.model, r.c.spec, r.c.revision))
        }

"""The metadata store: SQLAlchemy 2 over SQLite (default) or PostgreSQL.

Opening a store upgrades its schema with Alembic, under a lock so two processes opening
a fresh database at once do not race, and refuses a database written by a newer
Shipyard. Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (with WAL and a
busy timeout), so concurrent writers queue instead of failing with "database is locked"
half-way through; on PostgreSQL, uniqueness constraints decide races.
"""

from __future__ import annotations

import contextlib
import json
import operator
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shipyard.errors import SchemaVersionError, StoreError
from shipyard.store import schema
from shipyard.store.hashing import hash_bytes

__all__ = ["AuditReport", "Event", "MetadataStore", "Run"]

GENESIS = "0" * 64
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite hands back naive datetimes


@dataclass(frozen=True)
class Run:
    id: str
    project: str
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


@dataclass(frozen=True)
class Event:
    """One audit-log entry."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


def event_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str, details: Any, prev: str
) -> str:
    """The hash that chains an entry to its predecessor."""
    body = json.dumps(
        [seq, as_utc(at).isoformat(), actor, action, subject, details, prev],  # type: ignore[union-attr]
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hash_bytes(body.encode())


def _redact(url: sa.engine.URL) -> str:
    return url.render_as_string(hide_password=True)


def _normalise_url(url: str) -> sa.engine.URL:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"'{url}' is not a database URL",
            hint="use sqlite:///path/to/shipyard.db or postgresql://user@host/dbname",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database '{parsed.get_backend_name()}' is not supported",
            hint="use SQLite (default) or PostgreSQL",
        )
    return parsed


def _sqlite_engine(url: sa.engine.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.info.get("write", True) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _create_engine(url: str) -> Engine:
    parsed = _normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError:
        raise StoreError(
            "PostgreSQL support is not installed",
            hint="pip install 'shipyard-ml[postgres]'",
        ) from None


class MetadataStore:
    """Projects, runs, artifacts and the audit log, in one transactional database."""

    def __init__(self, url: str, *, clock: Clock = utc_now) -> None:
        self.url = url
        self.clock = clock
        self.engine = _create_engine(url)
        self.display_url = _redact(self.engine.url)
        self._migrate()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions --------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One database transaction; commits on success, rolls back on any error."""
        try:
            with self.engine.connect() as conn:
                conn.info["write"] = write
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreError(
                f"metadata store {self.display_url} failed: {_first_line(exc)}",
                hint="check that the database server is running and reachable",
            ) from None

    # --- schema ---------------------------------------------------------------------
    def _current_revision(self, conn: Connection) -> str | None:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def _migrate(self) -> None:
        with self.transaction() as conn:
            if self._current_revision(conn) == schema.HEAD_REVISION:
                return  # fast path: no Alembic import
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7461290)"))
            self._upgrade(conn)

    def _upgrade(self, conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        location = str(Path(__file__).with_name("migrations"))
        config = Config()
        config.set_main_option("script_location", location)
        config.attributes["connection"] = conn
        current = self._current_revision(conn)
        known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
        if current is not None and current not in known:
            raise SchemaVersionError(
                f"the metadata store {self.display_url} was written by a newer Shipyard "
                f"(schema revision {current!r}; this version knows up to "
                f"{schema.HEAD_REVISION!r})",
                hint="upgrade Shipyard: pip install -U shipyard-ml",
            )
        command.upgrade(config, "head")

    # --- projects -------------------------------------------------------------------
    def ensure_project(self, name: str, conn: Connection | None = None) -> int:
        """The id of project ``name``, created if needed (safe under concurrency)."""
        table = schema.projects
        with self.joined(conn) as tx:
            insert = _insert_ignoring_conflicts(tx)(table).values(
                name=name, created_at=self.clock()
            )
            tx.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            return int(tx.execute(sa.select(table.c.id).where(table.c.name == name)).scalar_one())

    @contextlib.contextmanager
    def joined(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as tx:
                yield tx

    # --- runs -----------------------------------------------------------------------
    def create_run(
        self,
        project: str,
        *,
        run_id: str | None = None,
        started_at: datetime | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        params: dict[str, Any] | None = None,
        environment: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> Run:
        run = Run(
            id=run_id or secrets.token_hex(6),
            project=project,
            status="running",
            started_at=started_at or self.clock(),
            git_commit=git_commit,
            git_dirty=git_dirty,
            params=params or {},
            environment=environment or {},
        )
        with self.joined(conn) as tx:
            project_id = self.ensure_project(project, tx)
            tx.execute(
                schema.runs.insert().values(
                    id=run.id,
                    project_id=project_id,
                    status=run.status,
                    started_at=run.started_at,
                    git_commit=git_commit,
                    git_dirty=git_dirty,
                    params=run.params,
                    metrics={},
                    environment=run.environment,
                )
            )
        return run

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        metrics: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        message: str | None = None,
        conn: Connection | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "ended_at": self.clock(), "message": message}
        values["metrics"] = metrics or {}
        if params is not None:
            values["params"] = params
        with self.joined(conn) as tx:
            tx.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(**values))

    def _run_query(self) -> sa.Select[Any]:
        r, p = schema.runs, schema.projects
        return sa.select(r, p.c.name.label("project")).join(p, p.c.id == r.c.project_id)

    @staticmethod
    def _to_run(row: Any) -> Run:
        m = row._mapping
        return Run(
            id=m["id"],
            project=m["project"],
            status=m["status"],
            started_at=as_utc(m["started_at"]),  # type: ignore[arg-type]
            ended_at=as_utc(m["ended_at"]),
            git_commit=m["git_commit"],
            git_dirty=m["git_dirty"],
            params=m["params"],
            metrics=m["metrics"],
            environment=m["environment"],
            message=m["message"],
        )

    def get_run(self, run_id: str) -> Run:
        with self.transaction(write=False) as tx:
            rows = tx.execute(
                self._run_query().where(schema.runs.c.id.startswith(run_id, autoescape=True))
            ).all()
        if not rows:
            raise StoreError(f"no run with id {run_id!r}", hint="`shipyard runs` lists runs")
        if len(rows) > 1:
            raise StoreError(f"run id {run_id!r} is ambiguous", hint="give more characters")
        return self._to_run(rows[0])

    def list_runs(self, project: str | None = None, limit: int = 50) -> list[Run]:
        query = self._run_query().order_by(schema.runs.c.started_at.desc()).limit(limit)
        if project is not None:
            query = query.where(schema.projects.c.name == project)
        with self.transaction(write=False) as tx:
            return [self._to_run(row) for row in tx.execute(query)]

    def search_runs(
        self,
        project: str | None,
        metric: str,
        op: str,
        value: float,
        *,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs whose metric ``metric`` compares to ``value`` by ``op``, newest first.

        The filter runs in the database (JSON extraction), so only matching rows come
        back; runs without the metric never match. Raises StoreError for an unknown op.
        """
        compare = _COMPARISONS.get(op)
        if compare is None:
            raise StoreError(
                f"unknown comparison {op!r}", hint=f"use one of {', '.join(_COMPARISONS)}"
            )
        metric_value = schema.runs.c.metrics[metric].as_float()
        query = self._run_query().where(compare(metric_value, float(value)))
        if project is not None:
            query = query.where(schema.projects.c.name == project)
        query = query.order_by(schema.runs.c.started_at.desc()).limit(limit)
        with self.transaction(write=False) as tx:
            return [self._to_run(row) for row in tx.execute(query)]

    # --- stage runs -----------------------------------------------------------------
    def record_stage_run(
        self, run_id: str, record: dict[str, Any], conn: Connection | None = None
    ) -> None:
        """Store one stage's outcome; ``record`` holds the stage_runs columns."""
        columns = {c.name for c in schema.stage_runs.columns} - {"id", "run_id"}
        values = {k: v for k, v in record.items() if k in columns}
        with self.joined(conn) as tx:
            tx.execute(schema.stage_runs.insert().values(run_id=run_id, **values))

    def stage_runs(self, run_id: str) -> list[dict[str, Any]]:
        table = schema.stage_runs
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)
        with self.transaction(write=False) as tx:
            rows = [dict(row._mapping) for row in tx.execute(query)]
        for row in rows:
            row["started_at"] = as_utc(row["started_at"])
            row["ended_at"] = as_utc(row["ended_at"])
        return rows

    def cached_outs(self, fingerprint: str) -> dict[str, str | None] | None:
        """Outputs of the newest successful stage run with this fingerprint (run cache)."""
        table = schema.stage_runs
        query = (
            sa.select(table.c.outs)
            .where(table.c.fingerprint == fingerprint, table.c.status.in_(("ran", "restored")))
            .order_by(table.c.id.desc())
            .limit(1)
        )
        with self.transaction(write=False) as tx:
            outs = tx.execute(query).scalar()
        return dict(outs) if outs is not None else None

    # --- artifacts ------------------------------------------------------------------
    def record_artifact(
        self, oid: str, size: int, files: int = 1, conn: Connection | None = None
    ) -> None:
        """Note an object in the index (idempotent)."""
        table = schema.artifacts
        with self.joined(conn) as tx:
            insert = _insert_ignoring_conflicts(tx)(table).values(
                oid=oid, size=size, files=files, created_at=self.clock()
            )
            tx.execute(insert.on_conflict_do_nothing(index_elements=["oid"]))

    # --- audit log ------------------------------------------------------------------
    def append_event(
        self,
        actor: str,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
        *,
        conn: Connection | None = None,
    ) -> Event:
        """Append one entry chained to the previous one.

        Pass ``conn`` to make the entry part of the caller's transaction, so a change and
        its audit entry commit together or not at all.
        """
        if conn is not None:
            return self._append(conn, actor, action, subject, details or {})
        for attempt in range(20):
            try:
                with self.transaction() as tx:
                    return self._append(tx, actor, action, subject, details or {})
            except IntegrityError:
                if attempt == 19:
                    raise StoreError("audit log is too busy; try again") from None
        raise AssertionError("unreachable")

    def _append(
        self, conn: Connection, actor: str, action: str, subject: str, details: dict[str, Any]
    ) -> Event:
        e = schema.events
        last = conn.execute(sa.select(e.c.seq, e.c.hash).order_by(e.c.seq.desc()).limit(1)).first()
        seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
        details = json.loads(json.dumps(details, default=str))  # what the DB will hand back
        at = self.clock()
        digest = event_hash(seq, at, actor, action, subject, details, prev)
        conn.execute(
            e.insert().values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                details=details,
                prev_hash=prev,
                hash=digest,
            )
        )
        return Event(seq, at, actor, action, subject, details, prev, digest)

    def events(
        self, *, action: str | None = None, limit: int | None = None, last: bool = False
    ) -> list[Event]:
        """Audit entries in order; ``last`` gives only the newest matching one."""
        e = schema.events
        query = sa.select(e).order_by(e.c.seq.desc() if last else e.c.seq)
        if last:
            limit = 1
        if action:
            query = query.where(e.c.action == action)
        if limit:
            query = query.limit(limit)
        with self.transaction(write=False) as tx:
            return [
                Event(**{**row._mapping, "at": as_utc(row._mapping["at"])})
                for row in tx.execute(query)
            ]

    def verify_audit(self) -> AuditReport:
        """Recompute the chain; report the first entry that was changed or removed."""
        prev, expected_seq, count = GENESIS, 1, 0
        for ev in self.events():
            count += 1
            if ev.seq != expected_seq:
                return AuditReport(False, count, expected_seq, f"entry {expected_seq} is missing")
            if ev.prev_hash != prev:
                return AuditReport(
                    False, count, ev.seq, f"entry {ev.seq} does not follow its predecessor"
                )
            actual = event_hash(
                ev.seq, ev.at, ev.actor, ev.action, ev.subject, ev.details, ev.prev_hash
            )
            if actual != ev.hash:
                return AuditReport(False, count, ev.seq, f"entry {ev.seq} was modified")
            prev, expected_seq = ev.hash, ev.seq + 1
        return AuditReport(True, count)


def _insert_ignoring_conflicts(conn: Connection) -> Any:
    """The dialect's INSERT construct, which offers ``on_conflict_do_nothing``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _first_line(exc: DBAPIError) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__

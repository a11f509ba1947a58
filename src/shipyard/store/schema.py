"""Tables of the metadata store (SQLAlchemy Core).

The Alembic migrations in ``migrations/versions`` create exactly these tables; a test
compares the two so a table change without a migration cannot land.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "HEAD_REVISION",
    "alerts",
    "alias_history",
    "aliases",
    "approvals",
    "artifacts",
    "events",
    "metadata",
    "model_versions",
    "models",
    "monitor_results",
    "projects",
    "rollouts",
    "runs",
    "stage_runs",
    "tokens",
    "users",
]

# The newest migration; the store compares the database's revision to it on open
# without importing Alembic (a test checks it equals the script directory's head).
HEAD_REVISION = "0005"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("message", Text),
)

# One row per stage per run. A succeeded row is also the run cache: a stage whose
# fingerprint matches one here can have its outputs restored instead of re-running.
stage_runs = Table(
    "stage_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False, index=True),
    Column("stage", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("reason", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("exit_code", Integer),
    Column("deps", JSON, nullable=False),
    Column("outs", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("resources", JSON, nullable=False),
    Column("log_oid", String(80)),
    Column("log_tail", Text),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("oid", String(80), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("files", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Append-only audit log. ``seq`` is assigned by the writer as previous + 1 and is the
# primary key, and ``prev_hash`` is unique: two writers racing for the same slot cannot
# both commit, so the chain stays linear without relying on application locks.
events = Table(
    "events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False, index=True),
    Column("subject", String(500), nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
)

# --- registry ---------------------------------------------------------------------------

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# Versions are immutable once written except for ``status`` (registered -> archived).
# (model_id, version) is unique, so two concurrent registrations cannot both take N+1.
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("oid", String(80), nullable=False),
    Column("format", String(32), nullable=False),
    Column("signature", JSON, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id")),
    Column("lineage", JSON, nullable=False),
    Column("gates", JSON),
    Column("card", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("description", Text),
    Column("trusted_pickle", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)

# One row per (model, alias): the primary key itself guarantees that an alias such as
# `production` points at no more than one version, whatever the code does.
aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("alias", String(100), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("action", String(16), nullable=False),  # set | rollback | remove
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("alias", String(100), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("decision", String(8), nullable=False),  # approve | reject
    Column("comment", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# Only a hash of each token is stored; the token itself is shown once, at creation.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# --- serving control plane --------------------------------------------------------------

# ``revision`` rises with every change to either table (one counter for both), so a
# gateway replica notices any change with one cheap query and reloads within a second.
routing_tables = Table(
    "routing_tables",
    metadata,
    Column("model", String(100), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

flags = Table(
    "flags",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

# --- rollouts and monitoring --------------------------------------------------------------

# One row per deployment. ``active_model`` equals ``model`` while the rollout is live and
# is NULL once it ended: a unique constraint, not code, keeps one live rollout per model.
# ``revision`` is the compare-and-set counter every state change checks and bumps, so
# two controllers (or a controller and a user) can never both move the same rollout.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(100), nullable=False, index=True),
    Column("active_model", String(100), unique=True),
    Column("candidate", Integer, nullable=False),
    Column("stable", Integer),
    Column("strategy", String(16), nullable=False),  # canary | bluegreen | ab | shadow
    Column("state", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("step_started_at", DateTime(timezone=True), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("last_decision", JSON),
    Column("reason", Text),
    Column("revision", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

# Alerts: ``active_key`` holds the dedup key while the alert is pending or firing and is
# NULL once resolved, so the same condition can never be open twice.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(200), nullable=False, index=True),
    Column("model", String(100)),
    Column("dedup_key", String(200), nullable=False, index=True),
    Column("active_key", String(200), unique=True),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # pending | firing | resolved
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("details", JSON),
    Column("notified", JSON),
    Column("action", JSON),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Figures from each monitor pass (drift per feature, performance, quality, signals),
# kept so dashboards can draw them over time.
monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("model", String(100), nullable=False, index=True),
    Column("version", Integer),
    Column("kind", String(32), nullable=False),  # drift | performance | quality | signal
    Column("name", String(200), nullable=False),
    Column("value", Float),
    Column("flagged", Boolean, nullable=False),
    Column("details", JSON),
)

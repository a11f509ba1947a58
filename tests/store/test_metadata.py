"""Metadata store contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.errors import SchemaVersionError, StoreError
from shipyard.store import open_metadata
from shipyard.store import schema as tables


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_store_creates_schema_and_reopens_without_migrating(metadata_url):
    with open_metadata(metadata_url) as store, store.transaction(write=False) as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert {"projects", "runs", "artifacts", "events", "alembic_version"} <= names
    with open_metadata(metadata_url) as again:  # second open takes the fast path
        assert again.list_runs() == []


def test_migrations_create_exactly_the_declared_schema(metadata_url):
    with open_metadata(metadata_url) as store, store.transaction(write=False) as conn:
        inspector = sa.inspect(conn)
        for table in tables.metadata.sorted_tables:
            actual = {c["name"] for c in inspector.get_columns(table.name)}
            assert actual == {c.name for c in table.columns}, table.name


def test_head_revision_constant_matches_migration_scripts():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(tables.__file__).with_name("migrations")))
    assert ScriptDirectory.from_config(config).get_current_head() == tables.HEAD_REVISION


def test_database_from_a_newer_shipyard_is_refused(metadata_url):
    with open_metadata(metadata_url) as store, store.transaction() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaVersionError, match="newer Shipyard") as info:
        open_metadata(metadata_url)
    assert "pip install -U" in str(info.value)


def test_run_lifecycle(metadata_url):
    with open_metadata(metadata_url, clock=FakeClock()) as store:
        run = store.create_run(
            "credit", git_commit="abc123", git_dirty=True, params={"train": {"C": 1.0}}
        )
        store.finish_run(run.id, "succeeded", metrics={"f1": 0.81})

        loaded = store.get_run(run.id[:6])
        assert loaded.status == "succeeded" and loaded.metrics == {"f1": 0.81}
        assert loaded.params == {"train": {"C": 1.0}} and loaded.git_dirty is True
        assert loaded.started_at.tzinfo is not None and loaded.ended_at > loaded.started_at
        assert [r.id for r in store.list_runs("credit")] == [run.id]
        assert store.list_runs("other") == []


def test_unknown_run_id_says_how_to_find_one(metadata_url):
    with open_metadata(metadata_url) as store, pytest.raises(StoreError, match="shipyard runs"):
        store.get_run("nope")


def test_project_creation_is_idempotent(metadata_url):
    with open_metadata(metadata_url) as store:
        assert store.ensure_project("p") == store.ensure_project("p")


def test_audit_chain_verifies_and_detects_tampering(metadata_url):
    with open_metadata(metadata_url, clock=FakeClock()) as store:
        for i in range(5):
            store.append_event("alice", "model.register", f"credit/{i}", {"version": i})
        assert store.verify_audit().ok and store.verify_audit().entries == 5

        with store.transaction() as conn:
            conn.execute(
                tables.events.update()
                .where(tables.events.c.seq == 3)
                .values(details={"version": 99})
            )
        report = store.verify_audit()
        assert not report.ok and report.first_bad_seq == 3 and "modified" in report.problem


def test_audit_detects_a_deleted_entry(metadata_url):
    with open_metadata(metadata_url) as store:
        for i in range(4):
            store.append_event("bob", "alias.move", "m", {"i": i})
        with store.transaction() as conn:
            conn.execute(tables.events.delete().where(tables.events.c.seq == 2))
        report = store.verify_audit()
        assert not report.ok and report.first_bad_seq == 2


def test_audit_entry_rolls_back_with_its_change(metadata_url):
    with open_metadata(metadata_url) as store:
        with pytest.raises(RuntimeError), store.transaction() as conn:
            store.append_event("carol", "approve", "m/1", conn=conn)
            raise RuntimeError("crash before commit")
        assert store.events() == []


def test_concurrent_audit_appends_form_one_gap_free_chain(metadata_url):
    with open_metadata(metadata_url) as store:
        store.ensure_project("p")
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(10):
                    store.append_event(f"user{n}", "touch", f"x/{i}")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        events = store.events()
        assert [e.seq for e in events] == list(range(1, 41))
        assert store.verify_audit().ok


def test_bad_database_url_is_a_clear_error():
    with pytest.raises(StoreError, match="not a database URL"):
        open_metadata("not a url")
    with pytest.raises(StoreError, match="not supported"):
        open_metadata("mysql://localhost/x")


def test_unreachable_postgres_is_a_clear_error():
    with pytest.raises(StoreError, match="metadata store postgresql") as info:
        open_metadata("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value)
    assert "running and reachable" in str(info.value)

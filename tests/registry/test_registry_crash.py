"""SIGKILL at random points of register and alias moves leaves the registry consistent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa

from shipyard.store import open_artifacts, open_metadata, schema

WORKER = textwrap.dedent(
    """
    import random, sys
    from shipyard.registry.service import Registry
    from shipyard.store import open_artifacts, open_metadata
    from shipyard.errors import Conflict

    registry = Registry(open_metadata(sys.argv[1]), open_artifacts(sys.argv[2]))
    registry.versions  # imports done
    import shipyard.formats.flavors, skops.io  # noqa
    rng = random.Random()
    print("ready", flush=True)
    while True:
        version = registry.register("m", sys.argv[3], actor="w")
        for alias in ("production", "staging"):
            try:
                registry.set_alias(f"m:{rng.randint(1, version.version)}", alias, actor="w")
            except Conflict:
                pass
        if version.version > 2 and rng.random() < 0.3:
            try:
                registry.rollback("m", actor="w")
            except Exception:
                pass
    """
)


def check_invariants(db_url: str, store_dir: Path) -> int:
    store = open_artifacts(str(store_dir))
    with open_metadata(db_url) as metadata, metadata.transaction(write=False) as conn:
        versions = conn.execute(sa.select(schema.model_versions)).all()
        numbers = sorted(v.version for v in versions)
        assert numbers == list(range(1, len(numbers) + 1)), "version numbers have gaps"
        ids = {v.id for v in versions}
        for alias in conn.execute(sa.select(schema.aliases)):
            assert alias.version_id in ids, "alias points at a missing version"
        for version in versions:
            store.verify(version.oid)  # artifact exists and matches its hash
        registered = conn.execute(
            sa.select(sa.func.count()).where(schema.events.c.action == "model.register")
        ).scalar()
        assert registered == len(versions), "one audit entry per committed registration"
        history = conn.execute(sa.select(sa.func.count()).select_from(schema.alias_history))
        moves = conn.execute(
            sa.select(sa.func.count()).where(schema.events.c.action.like("alias.%"))
        ).scalar()
        assert history.scalar() == moves
    with open_metadata(db_url) as metadata:
        assert metadata.verify_audit().ok
    return len(versions)


def test_kill_9_during_registry_writes_keeps_invariants(tmp_path, model_dir):
    db_url = f"sqlite:///{tmp_path / 'registry.db'}"
    store_dir = tmp_path / "store"
    open_metadata(db_url).close()  # migrate once, up front
    rng = random.Random(7)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    total = 0
    for _ in range(15):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(store_dir), str(model_dir)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))  # kill somewhere inside the write loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        total = check_invariants(db_url, store_dir)
    assert total > 5, "the workers barely wrote anything: the test exercised too little"

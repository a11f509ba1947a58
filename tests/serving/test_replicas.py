"""Several gateway replicas on one PostgreSQL store; routing changes under real load."""

from __future__ import annotations

import asyncio
import time

from shipyard.core.routing import Arm, RoutingTable

ROW = {"a": 0.5, "b": -1.0, "c": 2.0}


def wait_until(predicate, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


async def version_of(served) -> int:
    async with served.client() as client:
        return (await client.post("/v1/models/m/predict", json=ROW)).json()["version"]


def test_two_replicas_on_postgres_see_the_same_routing(tmp_path, postgres_url, make_served):
    first = make_served(tmp_path / "a", postgres_url, poll_interval=0.2)
    # the second replica shares the database and the artifact store, registers nothing
    second = make_served(tmp_path / "a", postgres_url, register=False, poll_interval=0.2)
    for version in (1, 2):
        first.control.set_table(RoutingTable("m", (Arm(version, 100.0),)), actor="dev")
        for replica in (first, second):
            took = wait_until(lambda r=replica, v=version: asyncio.run(version_of(r)) == v)
            assert took < 1.0 + 0.5  # within a second of the change, plus a poll's slack

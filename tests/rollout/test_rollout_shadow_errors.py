"""A shadow copy that fails is logged as an error of the shadow arm (the shadow report
reads its error rate from there); the user still gets production's answer."""

from __future__ import annotations

import asyncio

import httpx
from rollout_helpers import write_model

from shipyard.core.routing import Arm, RoutingTable
from shipyard.registry.service import Registry
from shipyard.serving.app import create_app
from shipyard.serving.control import ControlPlane
from shipyard.serving.gateway import Gateway, Settings
from shipyard.serving.predlog import read_log
from shipyard.store import open_artifacts, open_metadata


def test_a_failing_shadow_is_counted_and_never_reaches_the_user(tmp_path):
    metadata = open_metadata(f"sqlite:///{tmp_path / 'db.sqlite'}")
    registry = Registry(metadata, open_artifacts(str(tmp_path / "artifacts")))
    registry.register("m", write_model(tmp_path / "v1"), actor="dev")
    registry.register("m", write_model(tmp_path / "v2", error_rate=1.0), actor="dev")
    control = ControlPlane(metadata)
    control.set_table(RoutingTable("m", (Arm(1, 100.0),), shadows=(2,)), actor="dev")
    settings = Settings(allowed_hosts=("testserver",), log_dir=tmp_path / "log")
    gateway = Gateway(registry, control, settings, tmp_path / "cache")
    gateway.start()
    app = create_app(gateway)

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return [
                await c.post("/v1/models/m/predict", json={"x0": 0.5, "x1": 0.1}) for _ in range(5)
            ]

    try:
        answers = asyncio.run(ask())
    finally:
        gateway.stop()  # flushes the prediction log
        metadata.close()
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.json()["version"] for a in answers} == {1}
    errors = read_log(tmp_path / "log", "errors", "m")
    assert len(errors) == 5
    assert set(errors["arm"]) == {"shadow"} and set(errors["version"]) == {2}
    assert errors["error"].str.contains("injected fault").all()

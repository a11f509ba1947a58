"""Against a real `shipyard serve` (uvicorn on 127.0.0.1): routing changes drop nothing."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from shipyard.core.routing import Arm, RoutingTable
from shipyard.project import Project
from shipyard.registry import open_registry
from shipyard.serving.control import ControlPlane

BODY = json.dumps({"a": 0.5, "b": -1.0, "c": 2.0}).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    proc = subprocess.Popen([shipyard, "serve", "--port", str(port)], cwd=root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the gateway did not become ready")


def load(port: int, stop: threading.Event, statuses: list[int], versions: set[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        try:
            conn.request("POST", "/v1/models/m/predict", BODY, {"content-type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
        except OSError:  # a dropped connection is a failed request, not a dead thread
            statuses.append(0)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        statuses.append(response.status)
        if response.status == 200:
            versions.add(json.loads(payload)["version"])


def test_routing_changes_under_load_fail_no_request(tmp_path, make_model):
    (tmp_path / "shipyard.yaml").write_text("project: live\n")
    with Project(tmp_path) as project:
        registry = open_registry(project)
        for seed in (1, 2):
            registry.register("m", make_model(tmp_path / f"m{seed}", seed=seed), actor="dev")
    port = free_port()
    proc = start_server(tmp_path, port)
    stop, statuses, versions = threading.Event(), [], set()
    workers = [
        threading.Thread(target=load, args=(port, stop, statuses, versions)) for _ in range(8)
    ]
    try:
        for worker in workers:
            worker.start()
        with Project(tmp_path) as project:
            control = ControlPlane(project.metadata)
            for change in range(20):  # bounded: 20 changes, ~6 s of traffic
                weight = 100.0 if change % 2 else 0.0
                control.set_table(
                    RoutingTable("m", (Arm(1, 100 - weight), Arm(2, weight))), actor="dev"
                )
                time.sleep(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
        proc.terminate()
        proc.wait(timeout=30)
    assert len(statuses) >= 40  # at least two requests per routing change, on average
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert versions == {1, 2}
    log = tmp_path / ".shipyard" / "logs" / "serving" / "predictions"
    assert list(log.rglob("*.parquet")), "a clean stop flushes the prediction log"

"""`shipyard package` writes a context whose entry point serves in a fresh virtualenv."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.project import Project
from shipyard.registry import open_registry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_bundle_serves_predictions_from_a_fresh_virtualenv(tmp_path, make_model):
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "shipyard.yaml").write_text("project: p\n")
    with Project(project_dir) as project:
        registry = open_registry(project)
        for seed in (1, 2):
            registry.register("credit", make_model(tmp_path / f"m{seed}", seed=seed), actor="dev")
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    out = tmp_path / "bundle"
    subprocess.run([shipyard, "package", "credit:2", "-o", str(out)], cwd=project_dir, check=True)
    dockerfile = (out / "Dockerfile").read_text()
    assert "USER shipyard" in dockerfile and "HEALTHCHECK" in dockerfile
    assert "--no-admin" in dockerfile and "FROM python:3" in dockerfile

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(
        [*pip, "--find-links", str(out / "wheels"), "-r", str(out / "requirements.txt")],
        check=True,
        timeout=900,
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    server = subprocess.Popen(
        [str(venv / "bin" / "shipyard"), "serve", "--port", str(port), "--no-admin"],
        cwd=out / "app",
        env=env,
    )
    try:
        body = json.dumps({"a": 1.0, "b": 0.0, "c": -1.0})
        deadline = time.monotonic() + 90
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request(
                    "POST", "/v1/models/credit/predict", body, {"content-type": "application/json"}
                )
                response = conn.getresponse()
                break
            except OSError:
                assert time.monotonic() < deadline, "the bundled gateway never answered"
                time.sleep(0.5)
        answer = json.loads(response.read())
        assert response.status == 200, answer
        assert answer["version"] == 2 and answer["predictions"] in ([0], [1])
    finally:
        server.terminate()
        server.wait(timeout=30)

"""A real single-node Ray cluster on 127.0.0.1 for the Ray executor's tests.

``ray start --head --block`` runs in its own process group, which the fixture stops
with SIGTERM then SIGKILL. ``ray stop --force`` is not used: it stops every Ray process
on the machine, including clusters that other test runs or people started.

Ray nodes advertise, and listen on, the machine's network address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set when Ray is imported: set for the head
and for this (driver) process, everything stays on the loopback interface. The cluster
also gets a token of its own (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``): without
them, whether Ray (2.5x and later) demands a token depends on ``~/.ray/auth_token``,
which any earlier local ``ray.init()`` may have written. While the fixture is active
these variables are set in ``os.environ``, so child processes (the CLI) inherit them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BASE_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
START_TIMEOUT = 120.0


def ray_available() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def require_ray() -> None:
    if ray_available():
        return
    if IN_CI:
        pytest.fail("ray is not installed: CI must install shipyard-ml[ray]")
    pytest.skip("ray is not installed (pip install 'shipyard-ml[ray]')")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group(pgid: int) -> list[int]:
    """The processes of a process group (zombies included)."""
    import psutil

    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the head's process group; once only `ray start` itself is left (it does
    not exit on SIGTERM) or after 3 s (the GCS and raylet often linger), SIGKILL the
    rest. The cluster's state lives in its own temporary folder: nothing is lost."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and set(_group(pgid)) - {proc.pid}:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _group(pgid):
        time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """Start a Ray head on 127.0.0.1 with 2 CPUs and 1 (declared) GPU; yield its address
    "127.0.0.1:PORT"."""
    require_ray()
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        pytest.fail("ray was imported before the loopback setting: it must be imported later")
    env = {**BASE_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in [*env, "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"]}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.update(env)
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # unix sockets: keep it short
    out = temp_dir / "head.out"
    ray_bin = Path(sys.executable).with_name("ray")
    command = [
        str(ray_bin),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--num-gpus=1",  # declared, not real: Ray places `gpus: 1` stages here all the same
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Ray runtime started" not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ray start` did not start:\n{out.read_text(errors='replace')}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        if "ray" in sys.modules:
            import ray

            ray.shutdown()
        _stop_group(proc)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)

"""A real gateway process, candidate models with injected faults, and HTTP load."""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))

MODEL_PY = '''
import json
import random
import time

import numpy as np


class Model:
    """y = x0 + x1 > 0, with faults from config.json: errors, delay, wrong answers."""

    def __init__(self, config):
        self.config = config
        self.rng = random.Random()

    def predict(self, frame):
        x = frame.to_numpy(dtype=float)
        if self.rng.random() < self.config.get("error_rate", 0.0):
            raise ValueError("injected fault")
        time.sleep(self.config.get("delay_ms", 0.0) / 1000)
        y = (x[:, 0] + x[:, 1] > 0).astype(int)
        y = y + int(self.config.get("label_offset", 0))
        flip = self.config.get("flip", 0.0)
        if flip:
            wrong = np.array([self.rng.random() < flip for _ in range(len(y))])
            y = np.where(wrong, 1 - y, y)
        return y


def load(folder):
    return Model(json.loads((folder / "config.json").read_text()))
'''


def write_model(folder: Path, **config: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "config.json").write_text(json.dumps({"delay_ms": 2.0, **config}))
    (folder / "signature.json").write_text(
        json.dumps({"inputs": ["x0", "x1"], "types": {"x0": "float", "x1": "float"}})
    )
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shipyard(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [SHIPYARD, *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"shipyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def start_gateway(root: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([SHIPYARD, "serve", "--port", str(port), *extra], cwd=root)
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


@dataclass
class Load:
    """Requests at a steady rate from a few threads; labels sent back after a delay."""

    port: int
    model: str = "m"
    rate: float = 150.0
    threads: int = 4
    feedback_delay: float = 0.5
    results: list[tuple[float, int, int | None, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _pending: list[tuple[float, str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        feeder = threading.Thread(target=self._feed, daemon=True)
        feeder.start()
        self._workers.append(feeder)
        return self

    def close(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        interval = self.threads / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            x0, x1 = rng.gauss(0, 1), rng.gauss(0, 1)
            body = json.dumps({"x0": x0, "x1": x1}).encode()
            headers = {"content-type": "application/json", "x-user-id": f"u{rng.randrange(10**6)}"}
            try:
                conn.request("POST", f"/v1/models/{self.model}/predict", body, headers)
                response = conn.getresponse()
                payload = json.loads(response.read() or b"{}")
            except OSError:
                self.results.append((time.time(), 0, None, "connection"))
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            version = payload.get("version")
            message = payload.get("error", "")
            self.results.append((time.time(), response.status, version, message))
            if response.status == 200:
                with self._lock:
                    self._pending.append(
                        (
                            time.monotonic() + self.feedback_delay,
                            payload["request_id"],
                            int(x0 + x1 > 0),
                        )
                    )
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _feed(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [p for p in self._pending if p[0] <= now]
                self._pending = [p for p in self._pending if p[0] > now]
            if due:
                body = json.dumps(
                    {"feedback": [{"request_id": rid, "label": label} for _, rid, label in due]}
                ).encode()
                try:
                    conn.request("POST", "/v1/feedback", body, {"content-type": "application/json"})
                    conn.getresponse().read()
                except OSError:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            time.sleep(0.1)

    def failures(self, since: float = 0.0) -> list[tuple[float, int, int | None, str]]:
        return [r for r in self.results if r[0] >= since and r[1] != 200]

    def served_by(self, version: int, since: float = 0.0) -> int:
        return sum(1 for r in self.results if r[0] >= since and r[2] == version)


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")

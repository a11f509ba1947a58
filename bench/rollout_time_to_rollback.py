"""Time from a faulty canary's first failure to stable serving 100 % again.

A real `shipyard serve` (with its built-in rollout controller, default deploy settings:
steps 5/25/50/100, looks every second) on 127.0.0.1 takes a steady 200 requests/s
from a load generator. A canary is deployed that fails a share of its requests. The
clock starts at the first failed response the load generator sees from the canary and
stops at the last response the canary serves (after it, every request goes to stable).

No competing tool runs side by side: the progressive-delivery controllers teams use
(Argo Rollouts, Flagger) need a Kubernetes cluster and a metrics server, and analyse on
an interval of typically one minute — the issue's goal of 10 s is set against that.

    .venv/bin/python bench/rollout_time_to_rollback.py [--rate 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))

MODEL_PY = """
import json
import random

class Model:
    def __init__(self, config):
        self.config, self.rng = config, random.Random()

    def predict(self, frame):
        if self.rng.random() < self.config["error_rate"]:
            raise ValueError("injected fault")
        x = frame.to_numpy(dtype=float)
        return (x[:, 0] + x[:, 1] > 0).astype(int)

def load(folder):
    return Model(json.loads((folder / "config.json").read_text()))
"""


def write_model(folder: Path, error_rate: float) -> None:
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "config.json").write_text(json.dumps({"error_rate": error_rate}))
    (folder / "signature.json").write_text(json.dumps({"inputs": ["x0", "x1"]}))


def run(root: Path, *args: str) -> str:
    out = subprocess.run([SHIPYARD, *args], cwd=root, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"shipyard {' '.join(args)}: {out.stderr}")
    return out.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int) -> None:
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gateway not ready")


def load(port: int, rate: float, threads: int, stop: threading.Event, out: list) -> None:
    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        interval, next_at = threads / rate, time.monotonic()
        while not stop.is_set():
            body = json.dumps({"x0": rng.gauss(0, 1), "x1": rng.gauss(0, 1)})
            try:
                conn.request(
                    "POST", "/v1/models/m/predict", body, {"content-type": "application/json"}
                )
                response = conn.getresponse()
                payload = json.loads(response.read() or b"{}")
            except OSError:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            version = payload.get("version")
            if response.status != 200 and "m:" in payload.get("error", ""):
                version = int(payload["error"].split("m:")[1].split()[0])
            out.append((time.time(), response.status, version))
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def one(error_rate: float, rate: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "shipyard.yaml").write_text("project: bench\ngovernance: {require_gates: false}\n")
        write_model(root / "v1", 0.0)
        write_model(root / "v2", error_rate)
        run(root, "register", "m", "v1", "--format", "pyfunc")
        run(root, "register", "m", "v2", "--format", "pyfunc")
        run(root, "deploy", "m", "1")
        port = free_port()
        server = subprocess.Popen([SHIPYARD, "serve", "--port", str(port)], cwd=root)
        try:
            wait_ready(port)
            stop, results = threading.Event(), []
            gen = threading.Thread(target=load, args=(port, rate, 8, stop, results), daemon=True)
            gen.start()
            time.sleep(2.0)
            deployed = time.time()
            run(root, "deploy", "m", "2")
            deadline = time.time() + 120
            while time.time() < deadline:
                state = json.loads(run(root, "rollout", "status", "m", "--json"))[0]
                if state["state"] != "running":
                    break
                time.sleep(0.2)
            time.sleep(2.0)  # let late responses land
            stop.set()
            gen.join(timeout=30)
        finally:
            server.terminate()
            server.wait(timeout=30)
        window = [r for r in results if r[0] >= deployed]
        failures = [r for r in window if r[1] != 200 and r[2] == 2]
        canary = [r for r in window if r[2] == 2]
        achieved = len(window) / (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0
        if not failures:
            return {"state": state["state"], "seconds": None, "rate": achieved}
        return {
            "state": state["state"],
            "seconds": max(r[0] for r in canary) - failures[0][0],
            "rate": achieved,
            "canary_requests": len(canary),
            "stable_errors": sum(1 for r in window if r[1] != 200 and r[2] == 1),
        }


def _seconds(value: float | None) -> str:
    return "never (no canary failure seen)" if value is None else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"time to rollback at {args.rate:g} req/s (goal <= 10 s), default deploy settings")
    for error_rate in (0.05, 1.0):
        times = []
        for seed in range(args.runs):
            result = one(error_rate, args.rate, seed)
            times.append(result["seconds"])
            print(
                f"  canary failing {error_rate:4.0%}: {result['state']:<11} "
                f"time to rollback {_seconds(result['seconds'])} "
                f"(achieved {result['rate']:.0f} req/s, canary served "
                f"{result.get('canary_requests')}, stable errors {result.get('stable_errors')})"
            )
        done = [t for t in times if t is not None]
        if done:
            print(
                f"  -> failing {error_rate:.0%}: median {statistics.median(done):.2f} s, "
                f"max {max(done):.2f} s over {len(done)} runs; ratio to the 10 s goal "
                f"{statistics.median(done) / 10:.2f}"
            )


if __name__ == "__main__":
    main()

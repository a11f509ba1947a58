"""`shipyard demo` / `make demo`: the whole loop, for real, in a few minutes.

Every step runs the actual ``shipyard`` commands a user would type (each is printed
before it runs, its output shown), against a fresh example project on embedded
defaults: SQLite, a local artifact folder, in-process stages, a gateway on 127.0.0.1.
Nothing is scripted output: each step's claim is checked against the store before the
demo goes on, and the demo stops with the reason if a claim does not hold. The test
suite runs it non-interactively and asserts on the store afterwards.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ShipyardError

__all__ = ["DemoFailed", "run_demo"]

MODEL = "credit-risk"

# Faster than production defaults, so each rollout takes seconds: looks every 500 ms,
# steps of a few seconds, fewer requests per step (the demo sends ~60 requests/s).
DEPLOY = """\
deploy:
  strategy: canary
  steps: [10, 50, 100]
  step_duration: 4s
  interval: 500ms
  analysis: {min_requests: 40}
  bluegreen: {window: 3s}
"""

MONITOR = """\
monitor:
  drift: {every: 5m, reference: training}
  window: 1h
  notifiers:
    webhook: {type: webhook, url_env: SHIPYARD_WEBHOOK_URL}
  retrain: {command: "python src/make_data.py data/raw.csv 5000 43"}
  alerts:
    - {name: data-drift, when: "drift.share > 0.3", severity: critical,
       notify: [webhook], action: retrain, cooldown: 6h}
"""

FAULTY_MODEL_PY = '''"""v2 plus a lookup that runs only in production (CREDIT_RISK_ENV=production):
it fails for business loans. CI never sets that variable, so every gate passes."""

import os

from shipyard.formats import load_model


class Faulty:
    def __init__(self, inner):
        self.inner = inner

    def _lookup(self, frame):
        if os.environ.get("CREDIT_RISK_ENV") == "production":
            if (frame["purpose"] == "business").any():
                raise KeyError("sector_risk[business]: no such key in the lookup table")

    def predict(self, frame):
        self._lookup(frame)
        return self.inner.predict(frame)

    def predict_proba(self, frame):
        self._lookup(frame)
        return self.inner.predict_proba(frame)


def load(folder):
    return Faulty(load_model(folder / "inner"))
'''


class DemoFailed(ShipyardError):
    exit_code = 1


@dataclass
class Receiver:
    """A local webhook receiver: what the alert notifier posts lands here."""

    received: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def start(self) -> Receiver:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    outer.received.append(json.loads(self.rfile.read(length) or b"{}"))
                except ValueError:
                    outer.received.append({"unparsed": True})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self


@dataclass
class Traffic:
    """Steady requests like the example's applicants; labels come back after a delay."""

    port: int
    rate: float = 60.0
    shift: bool = False
    sent: int = 0
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Traffic:
        for index in range(3):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _row(self, rng: random.Random) -> tuple[dict[str, Any], int]:
        income = rng.lognormvariate(10.85, 0.45)
        debt = min(1.0, max(0.0, rng.betavariate(2, 5)))
        if self.shift:  # the world changes: incomes and debt both rise
            income *= 1.8
            debt = min(1.0, debt + 0.25)
        age = rng.randint(19, 74)
        history = max(0, age - 18 - rng.randint(0, 9))
        amount = rng.gammavariate(2.0, 6000)
        purpose = rng.choice(["car", "home", "education", "business"])
        logit = (
            -1.3
            - 2.4 * (_log(income) - 10.8)
            + 7.0 * (debt - 0.28)
            - 0.09 * (history - 15)
            + 0.00009 * (amount - 12000)
            + (0.9 if purpose == "business" else 0.0)
        )
        label = int(rng.random() < 1 / (1 + pow(2.718281828, -logit)))
        row = {
            "age": age,
            "income": round(income, 2),
            "debt_ratio": round(debt, 4),
            "history_years": history,
            "amount": round(amount, 2),
            "purpose": purpose,
        }
        return row, label

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        interval, next_at = 3 / self.rate, time.monotonic()
        pending: list[tuple[float, str, int]] = []
        while not self.stop.is_set():
            row, label = self._row(rng)
            headers = {
                "content-type": "application/json",
                "x-user-id": f"user-{rng.randrange(5000)}",
            }
            try:
                conn.request("POST", f"/v1/models/{MODEL}/predict", json.dumps(row), headers)
                response = conn.getresponse()
                body = json.loads(response.read() or b"{}")
                self.sent += 1
                if response.status != 200:
                    self.failed += 1
                else:
                    pending.append((time.monotonic() + 1.0, body["request_id"], label))
                due = [p for p in pending if p[0] <= time.monotonic()]
                if len(due) >= 10:
                    pending = [p for p in pending if p[0] > time.monotonic()]
                    feedback = [{"request_id": rid, "label": lab} for _, rid, lab in due]
                    conn.request(
                        "POST",
                        "/v1/feedback",
                        json.dumps({"feedback": feedback}),
                        {"content-type": "application/json"},
                    )
                    conn.getresponse().read()
            except OSError:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def _log(value: float) -> float:
    import math

    return math.log(value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, folder: Path, *, port: int | None, out: Callable[[str], None]) -> None:
        self.folder = folder.absolute()
        self.port = port or _free_port()
        self.out = out
        self.env = {**os.environ, "SHIPYARD_USER": "alice", "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("SHIPYARD_URL", None)
        self.shipyard = [str(Path(sys.executable).with_name("shipyard"))]
        if not Path(self.shipyard[0]).exists():
            self.shipyard = [sys.executable, "-m", "shipyard"]
        self.gateway: subprocess.Popen[bytes] | None = None
        self.traffic: Traffic | None = None
        self.receiver = Receiver().start()
        self.outcomes: dict[str, Any] = {}
        self.started = time.monotonic()

    # --- narration and commands ----------------------------------------------------------
    def chapter(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out(f"\n\033[1m==> {text}\033[0m  [{elapsed:5.1f}s]")

    def say(self, text: str) -> None:
        self.out(f"    {text}")

    def run(
        self,
        *args: str,
        user: str | None = None,
        ok: bool = True,
        show: int = 12,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if user:
            env["SHIPYARD_USER"] = user
        who = f"SHIPYARD_USER={user} " if user else ""
        self.out(f"  $ {who}shipyard {' '.join(args)}")
        done = subprocess.run(
            [*self.shipyard, *args],
            cwd=cwd or self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        text = (done.stdout + done.stderr).rstrip().splitlines()
        for line in text[:show]:
            self.out(f"    {line}")
        if len(text) > show:
            self.out(f"    … ({len(text) - show} more lines)")
        if ok and done.returncode != 0:
            raise DemoFailed(f"`shipyard {' '.join(args)}` exited {done.returncode}")
        return done

    def claim(self, holds: bool, text: str) -> None:
        """A claim the demo makes, checked against the store before going on."""
        if not holds:
            raise DemoFailed(f"demo claim did not hold: {text}")
        self.out(f"    \u2713 {text}")

    # --- the store --------------------------------------------------------------------------
    def project(self) -> Any:
        from shipyard.project import Project

        return Project(self.folder)

    def version(self, ref: str) -> Any:
        from shipyard.registry import open_registry

        with self.project() as project:
            return open_registry(project).get(ref)

    def production(self) -> int:
        return int(self.version(f"{MODEL}@production").version)

    def rollout(self, candidate: int) -> Any:
        from shipyard.rollout.state import RolloutStore

        with self.project() as project:
            for rollout in RolloutStore(project.metadata).history(MODEL):
                if rollout.candidate == candidate:
                    return rollout
        return None

    def wait_rollout(self, candidate: int, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        shown = -1
        while time.monotonic() < deadline:
            rollout = self.rollout(candidate)
            if rollout is not None and rollout.step != shown and rollout.live:
                shown = rollout.step
                self.say(
                    f"rollout #{rollout.id}: step {rollout.step + 1}, "
                    f"v{candidate} takes {rollout.weight:g}% of traffic"
                )
            if rollout is not None and not rollout.live:
                self.say(f"rollout #{rollout.id} ended: {rollout.state} — {rollout.reason}")
                return rollout
            time.sleep(0.3)
        raise DemoFailed(f"the rollout of v{candidate} did not end within {timeout:g}s")

    def edit(self, path: str, old: str, new: str) -> None:
        file = self.folder / path
        text = file.read_text()
        if old not in text:
            raise DemoFailed(f"cannot edit {path}: {old!r} not found")
        file.write_text(text.replace(old, new, 1))

    # --- the story --------------------------------------------------------------------------
    def start(self) -> None:
        self.chapter("A fresh example project: a credit-risk classifier in a git repository")
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.run("init", "--example", MODEL, str(self.folder), cwd=self.folder.parent)
        config = self.folder / "shipyard.yaml"
        text = config.read_text()
        text = text[: text.index("deploy:")] + DEPLOY + "\n" + MONITOR
        # this machine also runs the gateway and the demo's traffic while gates measure
        text = text.replace('latency: {p99_ms: "<= 50"}', 'latency: {p99_ms: "<= 500"}')
        config.write_text(text)
        self.say("shipyard.yaml: demo-speed rollout steps (seconds, not minutes) and a")
        self.say("drift alert that posts to a local webhook and retrains")
        subprocess.run(["git", "init", "-q", "."], cwd=self.folder, check=False)
        self.env["SHIPYARD_WEBHOOK_URL"] = f"http://127.0.0.1:{self.receiver.port}/hook"
        self.run("users", "add", "admin", "--role", "admin", user="admin")
        self.run("users", "add", "alice", "--role", "developer", user="admin")
        self.run("users", "add", "bob", "--role", "approver", user="admin")

    def pipeline(self) -> None:
        self.chapter("The pipeline as a cached DAG: prepare -> train -> evaluate")
        self.run("run")
        with self.project() as project:
            first = project.metadata.list_runs(limit=5)
            stages = project.metadata.stage_runs(first[0].id)
        self.claim(
            len(first) == 1 and {s["status"] for s in stages} == {"ran"},
            f"run {first[0].id[:8]} ran its {len(stages)} stages, recorded with lineage",
        )
        self.say("and again, with nothing changed:")
        self.run("run")
        with self.project() as project:
            again = project.metadata.list_runs(limit=5)
        self.claim(len(again) == 1, "the second run found every stage up to date: nothing ran")
        self.outcomes["first_run"] = first[0].id

    def first_version(self) -> None:
        self.chapter("Gates on v1, registered, approved by a second person, deployed")
        self.run("check", "--output", "reports/v1", show=16)
        self.run("register", MODEL, "model", "--gates", "reports/v1/report.json")
        self.run("approve", f"{MODEL}:1", user="alice", ok=False, show=3)
        self.say("alice wrote it and is a developer: she cannot approve; bob, an approver")
        self.say("who did not register it (four-eyes), can")
        self.run("approve", f"{MODEL}:1", "--comment", "numbers look right", user="bob")
        self.run("deploy", MODEL, "1", "--strategy", "bluegreen")
        self.claim(self.production() == 1, "v1 serves production (first deployment)")

    def serve(self) -> None:
        self.chapter("The gateway on 127.0.0.1 with its rollout controller; traffic starts")
        self.out(f"  $ shipyard serve --port {self.port} &")
        log = open(self.folder / ".shipyard" / "serve.log", "wb")  # noqa: SIM115
        self.gateway = subprocess.Popen(
            [*self.shipyard, "serve", "--port", str(self.port)],
            cwd=self.folder,
            env={**self.env, "CREDIT_RISK_ENV": "production"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise DemoFailed("the gateway did not become ready in 120 s")
        self.traffic = Traffic(self.port).start()
        time.sleep(3)
        self.claim(self.traffic.sent > 0, f"{self.traffic.sent} requests answered so far")

    def better_version(self) -> None:
        self.chapter("v2: better regularisation; gates include no regression vs production")
        self.edit("params.yaml", "C: 1.0", "C: 0.5")
        self.run("run")
        self.run("check", "--output", "reports/v2", show=16)
        self.run("register", MODEL, "model", "--gates", "reports/v2/report.json")
        self.run("approve", f"{MODEL}:2", user="bob")
        self.run("deploy", MODEL, "2")
        rollout = self.wait_rollout(2)
        self.claim(rollout.state == "completed", "the canary passed each step's analysis")
        self.claim(self.production() == 2, "v2 serves production")

    def poisoned_version(self) -> None:
        self.chapter("v3: someone poisons the training data (labels flipped for car loans)")
        raw = self.folder / "data" / "raw.csv"
        self.clean_raw = raw.read_bytes()
        import pandas as pd

        frame = pd.read_csv(raw)
        rng = random.Random(3)
        car = frame.index[frame["purpose"] == "car"]
        flip = [i for i in car if rng.random() < 0.45]
        frame.loc[flip, "default"] = 1 - frame.loc[flip, "default"]
        frame.to_csv(raw, index=False)
        self.say(f"{len(flip)} labels flipped in data/raw.csv")
        self.run("run")
        done = self.run("check", "--output", "reports/v3", ok=False, show=16)
        self.claim(done.returncode == 1, "the gates failed the candidate")
        report = json.loads((self.folder / "reports/v3/report.json").read_text())
        failed = [g["name"] for g in report.get("gates", []) if g.get("passed") is False]
        self.say(f"failed gates: {', '.join(failed)}")
        self.run("register", MODEL, "model", "--gates", "reports/v3/report.json")
        self.run("approve", f"{MODEL}:3", user="bob", ok=False, show=4)
        blocked = self.run("deploy", MODEL, "3", ok=False, show=4)
        self.claim(
            blocked.returncode != 0 and self.rollout(3) is None and self.production() == 2,
            "v3 is blocked: no traffic ever reached it; v2 still serves",
        )
        self.outcomes["poisoned_gates"] = failed
        raw.write_bytes(self.clean_raw)
        self.run("run")  # back to the clean data (restored from the cache)

    def faulty_version(self) -> None:
        self.chapter("v4: passes every gate, but fails in production (an environment-only bug)")
        folder = self.folder / "candidates" / "v4"
        folder.mkdir(parents=True)
        shutil.copytree(self.folder / "model", folder / "inner")
        (folder / "model.py").write_text(FAULTY_MODEL_PY)
        shutil.copy(self.folder / "model" / "signature.json", folder / "signature.json")
        self.run("check", "candidates/v4", "--output", "reports/v4", show=6)
        self.run(
            "register", MODEL, "candidates/v4", "--format", "pyfunc", "--gates",
            "reports/v4/report.json",
        )  # fmt: skip
        self.run("approve", f"{MODEL}:4", user="bob")
        self.run("deploy", MODEL, "4")
        rollout = self.wait_rollout(4)
        self.claim(rollout.state == "rolled_back", "the controller rolled v4 back by itself")
        self.claim(self.production() == 2, "v2 serves everyone again")
        self.run("rollout", "status", MODEL, show=14)

    def drift(self) -> None:
        self.chapter("The world changes: incomes and debt ratios shift in live traffic")
        assert self.traffic is not None
        self.traffic.close()
        time.sleep(1.5)
        since = time.time()
        self.traffic = Traffic(self.port, shift=True).start()
        time.sleep(12)
        self.traffic.close()
        time.sleep(1.0)  # the prediction log flushes every 250 ms
        window = f"{int(time.time() - since) + 1}s"
        # exit 1 says an alert is firing: that is what this step expects
        self.run("monitor", "--once", "--window", window, ok=False, show=30)
        with self.project() as project:
            import sqlalchemy as sa

            from shipyard.store import schema

            a = schema.alerts
            with project.metadata.transaction(write=False) as tx:
                fired = tx.execute(sa.select(a).where(a.c.rule == "data-drift")).first()
        self.claim(fired is not None and fired.state == "firing", "the data-drift alert fired")
        self.claim(bool(self.receiver.received), "the alert reached the local webhook receiver")
        action = fired.action or {}
        self.say(f"action: {json.dumps(action)[:300]}")
        self.claim(bool(action.get("version")), f"retraining registered v{action.get('version')}")
        self.outcomes["retrained"] = int(action["version"])
        self.outcomes["alert"] = self.receiver.received[0]

    def retrained_canary(self) -> None:
        version = self.outcomes["retrained"]
        self.chapter(f"v{version}: retrained on fresh data; bob approves; a new canary")
        self.run("approve", f"{MODEL}:{version}", user="bob")
        if self.rollout(version) is None:
            self.run("deploy", MODEL, str(version))
        self.traffic = Traffic(self.port, shift=True).start()
        rollout = self.wait_rollout(version)
        self.claim(rollout.state in ("completed", "rolled_back"), "the canary was judged")
        self.outcomes["retrained_rollout"] = rollout.state

    def finish(self) -> None:
        self.chapter("Audit log and where to look")
        self.run("audit", "verify")
        self.out(
            f"""
    The demo project is {self.folder}
    Gate reports (open in a browser):
      {self.folder}/reports/v1/report.html  … v2, v3 (failed: poisoning), v4
    Drift report: {self.folder}/.shipyard/reports/monitor/
    Dashboard: cd {self.folder} && shipyard ui   (then open the printed URL and
      sign in with a token: SHIPYARD_USER=admin shipyard token create bob)
    Everything above is in the store: shipyard models {MODEL}; shipyard rollout list;
    shipyard audit log
"""
        )

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.close()
        if self.gateway is not None:
            self.gateway.terminate()
            try:
                self.gateway.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.gateway.kill()


def run_demo(
    folder: Path, *, port: int | None = None, out: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole story; returns what each step found (the store has the rest)."""
    demo = Demo(folder, port=port, out=out)
    try:
        demo.start()
        demo.pipeline()
        demo.first_version()
        demo.serve()
        demo.better_version()
        demo.poisoned_version()
        demo.faulty_version()
        demo.drift()
        demo.retrained_canary()
        demo.finish()
    finally:
        demo.stop()
    return demo.outcomes

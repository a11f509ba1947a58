"""Serving throughput and latency: ``shipyard serve`` next to MLflow, MLServer and bare FastAPI.

The workload of the issue: the shared scikit-learn LogisticRegression (20 features,
trained on 10k rows by /work/shared/anchors/train_model.py), one row per JSON POST,
load from wrk on 127.0.0.1 (``wrk -t2 -cN -dDs -s post.lua --latency``). Goals:

* ``shipyard serve`` with routing (two versions, 90/10), metrics and the prediction
  log on: at least 3x the throughput of ``mlflow models serve`` and at least the
  throughput of a bare FastAPI app that only calls ``model.predict``;
* its p99 at 16 connections no worse than the bare app's;
* 0 failed requests while the routing table changes 20 times during a 30 s load at
  64 connections.

Servers, each with one worker process, started in turn and stopped after their runs:

* ``shipyard``: a scratch project; the joblib model converted to skops (``model/``
  with ``signature.json``), registered twice (versions 1 and 2), ``routing set
  --split 1=90,2=10``, ``shipyard serve`` (metrics and the prediction log on, as by
  default). ``shipyard+mb2`` is the same with ``--micro-batch-ms 2``, reported apart.
  Body: ``{"f0": ..., ..., "f19": ...}`` to ``/v1/models/bench/predict``; the answer
  holds the prediction and the class probabilities.
* ``fastapi``: a bare FastAPI app (uvicorn, uvloop/httptools as installed, no access
  log) that loads model.joblib and returns ``model.predict`` of the same record body.
* ``mlserver``: ``mlserver start`` on a folder with ``mlserver_sklearn.SKLearnModel``
  and ``parallel_workers`` 0 (inference in the server process; ``--mlserver-workers``),
  Open Inference Protocol body (one FP64 tensor of shape [1, 20]).
* ``mlflow``: ``mlflow models serve -m <logged model> --env-manager local -w 1``,
  body ``{"inputs": [[...]]}`` to ``/invocations``.

Per server: start, wait for readiness, check one answer against the model's own
prediction, warm up (``--warmup`` seconds of wrk, untimed), then one wrk run per
connection count (16 and 64), stop. Rounds (``--rounds``, default 2) visit the servers
in reverse order every other round; the table shows the median over rounds and each
round's figure, because this 2-core machine is shared and other jobs run at times
(the 1-minute load average before each run is printed too). wrk itself takes one of
the two cores, the same for every server. Next to wrk's figures, each run records the
CPU time of the server's process group (from /proc) per request: what a request
costs the server, which other jobs on the machine move much less than req/s.

Then the routing-change test: ``shipyard serve`` under ``wrk -c64 -d30s`` while a
thread sets the routing table 20 times (alternating 50/50 and 90/10, through the
Python ControlPlane API, or the CLI with ``--routing-via cli``); it reports non-2xx
responses and socket errors (goal: 0), and checks the gateway picked up the last
change. Finally (``--no-breakdown`` skips it) an in-process breakdown of one request's
cost through Shipyard's request path, stage by stage, in microseconds, and the whole
ASGI app called in-process (``--cprofile N`` adds a cProfile of N such requests).

A benchmark, not a test: it prints figures and exits 0 whatever they are. About 9 to
10 minutes with the defaults; ``--duration 5 --rounds 1 --routing-duration 10`` takes
about 3.

    .venv/bin/python bench/serving_vs_servers.py [--duration 15] [--rounds 2]
        [--servers shipyard,shipyard+mb2,fastapi,mlserver,mlflow] [--connections 16,64]
        [--routing-duration 30] [--routing-changes 20] [--no-routing] [--no-breakdown]
        [--py-spy OUT.svg] [--cprofile N] [--workdir DIR] [--keep]

Competitors come from their own virtual environments under /tmp/anchors (see
/work/shared/anchors/install-anchors.sh); a missing one is skipped with a note. The
model is trained into ``--model-dir`` (default /tmp/anchors/serve) with the MLflow
venv's python unless it is there already.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("SHIPYARD_BENCH_ANCHORS", "/tmp/anchors"))
SHARED = Path(os.environ.get("SHIPYARD_BENCH_SHARED", "/work/shared/anchors"))
GOAL_VS_MLFLOW = 3.0
GOAL_VS_FASTAPI = 1.0
ISSUE_FIGURES = "bare FastAPI ≈ 2,700 req/s at 16 connections, MLServer ≈ 1,600, MLflow ≈ 900"
ALL_SERVERS = ("shipyard", "shipyard+mb2", "fastapi", "mlserver", "mlflow")
MODEL = "bench"

FASTAPI_APP = """\
import joblib
import numpy as np
from fastapi import FastAPI

model = joblib.load({model!r})
app = FastAPI()


@app.get("/health")
async def health():
    return {{"status": "ok"}}


@app.post("/predict")
async def predict(row: dict):
    x = np.array([list(row.values())], dtype=float)
    return {{"prediction": model.predict(x).tolist()}}
"""


# --- command line -------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds per wrk run (15)")
    parser.add_argument("--warmup", type=float, default=3, help="untimed wrk seconds (3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all servers (2)")
    parser.add_argument(
        "--connections", default="16,64", help="wrk connection counts, comma-separated"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--servers",
        default=",".join(ALL_SERVERS),
        help=f"comma-separated subset of {','.join(ALL_SERVERS)}",
    )
    parser.add_argument("--micro-batch-ms", type=float, default=2.0, help="for shipyard+mb2")
    parser.add_argument("--mlserver-workers", type=int, default=0, help="parallel_workers (0)")
    parser.add_argument("--routing-duration", type=float, default=30, help="seconds (30)")
    parser.add_argument("--routing-changes", type=int, default=20, help="table changes (20)")
    parser.add_argument("--routing-connections", type=int, default=64)
    parser.add_argument("--routing-via", choices=("api", "cli"), default="api")
    parser.add_argument("--no-routing", action="store_true", help="skip the routing test")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the breakdown")
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile N in-process requests and print the top functions",
    )
    parser.add_argument(
        "--py-spy",
        metavar="OUT.svg",
        help="record a py-spy flame graph of shipyard serve during its first timed run",
    )
    parser.add_argument("--model-dir", default=str(ANCHORS / "serve"))
    parser.add_argument("--shipyard", default=str(REPO / ".venv" / "bin" / "shipyard"))
    parser.add_argument("--anchors", default=str(ANCHORS))
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--workdir", help="scratch folder (default: a fresh temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",") if c]
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in args.servers if s not in ALL_SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {unknown}; choose from {ALL_SERVERS}")
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    return args


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def version_in(python: Path, *dists: str) -> str:
    code = (
        "import importlib.metadata as m\n"
        f"for d in {list(dists)!r}:\n"
        "    try: print(d, m.version(d))\n"
        "    except Exception: print(d, '?')"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return ", ".join(proc.stdout.split("\n")[:-1]) or "?"


def load1() -> float:
    return os.getloadavg()[0]


# --- wrk -------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: dict[str, int]
    load: float
    raw: str = ""
    cpu_us: float = 0.0  # CPU time of the server's process group per request
    cores: float = 0.0  # its CPU time over the run's wall time

    @property
    def failed(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(text: str, load: float) -> WrkResult:
    """Requests/sec, p50/p99 (from --latency's distribution) and the error lines."""
    percentiles: dict[str, float] = {}
    for pct, number, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        percentiles[pct] = float(number) * _UNITS[unit]
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = dict(zip(("connect", "read", "write", "timeout"), (0, 0, 0, 0), strict=True))
    if sock:
        errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
    if rps is None or "50" not in percentiles or "99" not in percentiles:
        raise RuntimeError(f"cannot parse wrk output:\n{text[-2000:]}")
    return WrkResult(
        float(rps.group(1)),
        percentiles["50"],
        percentiles["99"],
        int(total.group(1)) if total else 0,
        int(non2xx.group(1)) if non2xx else 0,
        errors,
        load,
        text,
    )


def group_cpu(pgid: int) -> float:
    """User + system CPU seconds of the live processes in one process group."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    connections: int,
    seconds: float,
    threads: int,
    pgid: int | None = None,
) -> WrkResult:
    load = load1()
    argv = [
        wrk,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-s",
        str(SHARED / "post.lua"),
        "--latency",
        url,
    ]
    env = {**os.environ, "BODY_FILE": str(body_file)}
    cpu = group_cpu(pgid) if pgid else 0.0
    started = time.monotonic()
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited {proc.returncode}: {proc.stderr[-500:]}")
    result = parse_wrk(proc.stdout, load)
    if pgid:
        cpu = group_cpu(pgid) - cpu
        result.cpu_us = cpu / max(1, result.requests) * 1e6
        result.cores = cpu / wall
    return result


# --- servers -------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    argv: list[str]
    cwd: Path
    ready_path: str
    predict_path: str
    body_file: Path
    prediction: Callable[[Any], Any]  # the predicted class from the parsed answer
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    version: str = "?"
    note: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + self.predict_path

    def start(self, workdir: Path, tag: str, timeout: float = 180) -> None:
        self.log = workdir / "logs" / f"{self.name.replace('+', '_')}-{tag}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its children
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.tail()}")
            try:
                status, _ = http(self.base + self.ready_path, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-1500:]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script created
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.proc = None


@dataclass
class Setup:
    workdir: Path
    model_dir: Path
    project: Path
    names: list[str]
    row: list[float]
    expected: int


def ensure_model(model_dir: Path, anchors: Path) -> None:
    needed = ("model.joblib", "model_uri.txt", "sample_row.json", "expected.json", "mlflow.db")
    if all((model_dir / n).exists() for n in needed):
        return
    python = anchors / "mlflow" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no model in {model_dir} and no MLflow venv at {python} to train one")
    print(f"training the reference model into {model_dir} (about a minute) ...", flush=True)
    subprocess.run([str(python), str(SHARED / "train_model.py"), str(model_dir)], check=True)


def shipyard_project(args: argparse.Namespace, setup: Setup) -> None:
    """A scratch project with two versions of the model and a 90/10 table."""
    import joblib
    import skops.io as sio

    project = setup.project
    project.mkdir(parents=True)
    shipyard = args.shipyard
    subprocess.run([shipyard, "init"], cwd=project, check=True, capture_output=True)
    folder = project / "model"
    folder.mkdir()
    model = joblib.load(setup.model_dir / "model.joblib")  # trained by us: trusted
    sio.dump(model, folder / "model.skops")
    signature = {
        "inputs": setup.names,
        "types": {n: "number" for n in setup.names},
        "output": "y",
    }
    (folder / "signature.json").write_text(json.dumps(signature))
    for _ in range(2):
        subprocess.run(
            [shipyard, "register", MODEL, "model"], cwd=project, check=True, capture_output=True
        )
    subprocess.run(
        [shipyard, "routing", "set", MODEL, "--split", "1=90,2=10"],
        cwd=project,
        check=True,
        capture_output=True,
    )


def make_servers(args: argparse.Namespace, setup: Setup) -> tuple[list[Server], list[str]]:
    anchors = Path(args.anchors)
    work = setup.workdir
    notes: list[str] = []
    servers: list[Server] = []
    record = dict(zip(setup.names, setup.row, strict=True))
    bodies = {
        "record": record,
        "mlflow": {"inputs": [setup.row]},
        "v2": {
            "inputs": [
                {
                    "name": "predict",
                    "shape": [1, len(setup.row)],
                    "datatype": "FP64",
                    "data": setup.row,
                }
            ]
        },
    }
    files = {}
    for key, body in bodies.items():
        files[key] = work / f"body-{key}.json"
        files[key].write_text(json.dumps(body))
    # Every server runs from bytecode compiled once into a scratch cache (the sandbox
    # sets PYTHONDONTWRITEBYTECODE; Shipyard's editable source has no __pycache__).
    common = {"PYTHONPYCACHEPREFIX": str(work / "pycache"), "PYTHONDONTWRITEBYTECODE": ""}
    wanted = set(args.servers)
    if {"shipyard", "shipyard+mb2"} & wanted:
        shipyard_project(args, setup)
        version = version_in(REPO / ".venv" / "bin" / "python", "shipyard-ml", "scikit-learn")
        for name, extra in (("shipyard", []), ("shipyard+mb2", ["--micro-batch-ms"])):
            if name not in wanted:
                continue
            if extra:
                extra = [*extra, f"{args.micro_batch_ms:g}"]
            servers.append(
                Server(
                    name,
                    [args.shipyard, "serve", "--log-level", "warning", *extra, "--port"],
                    setup.project,
                    "/readyz",
                    f"/v1/models/{MODEL}/predict",
                    files["record"],
                    lambda a: a["predictions"][0],
                    dict(common),
                    version=version,
                    note="routing 90/10 over 2 versions, metrics + prediction log on",
                )
            )
    if "fastapi" in wanted:
        python = anchors / "fastapi" / "bin" / "python"
        if python.exists():
            folder = work / "fastapi"
            folder.mkdir()
            app = FASTAPI_APP.format(model=str(setup.model_dir / "model.joblib"))
            (folder / "app.py").write_text(app)
            servers.append(
                Server(
                    "fastapi",
                    [
                        *(str(python), "-m", "uvicorn", "app:app", "--host", "127.0.0.1"),
                        *("--workers", "1", "--log-level", "warning", "--no-access-log", "--port"),
                    ],
                    folder,
                    "/health",
                    "/predict",
                    files["record"],
                    lambda a: a["prediction"][0],
                    dict(common),
                    version=version_in(python, "fastapi", "uvicorn", "scikit-learn"),
                    note="model.predict only, no access log",
                )
            )
        else:
            notes.append(f"skipped fastapi: no venv at {python.parent.parent}")
    if "mlserver" in wanted:
        exe = anchors / "mlserver" / "bin" / "mlserver"
        if exe.exists():
            folder = work / "mlserver"
            folder.mkdir()
            settings = {
                "name": MODEL,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(setup.model_dir / "model.joblib")},
            }
            (folder / "model-settings.json").write_text(json.dumps(settings))
            servers.append(
                Server(
                    "mlserver",
                    [str(exe), "start", str(folder)],
                    folder,
                    "/v2/health/ready",
                    f"/v2/models/{MODEL}/infer",
                    files["v2"],
                    lambda a: a["outputs"][0]["data"][0],
                    {**common, "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}"},
                    version=version_in(exe.parent / "python", "mlserver", "scikit-learn"),
                    note=f"parallel_workers {args.mlserver_workers}, defaults otherwise",
                )
            )
        else:
            notes.append(f"skipped mlserver: no venv at {exe.parent.parent}")
    if "mlflow" in wanted:
        exe = anchors / "mlflow" / "bin" / "mlflow"
        if exe.exists():
            uri = (setup.model_dir / "model_uri.txt").read_text().strip()
            servers.append(
                Server(
                    "mlflow",
                    [
                        *(str(exe), "models", "serve", "-m", uri, "--env-manager", "local"),
                        *("-w", "1", "-h", "127.0.0.1", "-p"),
                    ],
                    work,
                    "/ping",
                    "/invocations",
                    files["mlflow"],
                    lambda a: a["predictions"][0],
                    {
                        **common,
                        "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}",
                        "MLFLOW_TRACKING_URI": f"sqlite:///{setup.model_dir / 'mlflow.db'}",
                    },
                    version=version_in(exe.parent / "python", "mlflow", "scikit-learn"),
                    note="uvicorn, its default access log",
                )
            )
        else:
            notes.append(f"skipped mlflow: no venv at {exe.parent.parent}")
    return servers, notes


def assign_port(server: Server, args: argparse.Namespace) -> None:
    server.port = free_port()
    if server.name == "mlserver":
        folder = server.cwd
        grpc, metrics = free_port(), free_port()
        settings = {
            "host": "127.0.0.1",
            "http_port": server.port,
            "grpc_port": grpc,
            "metrics_port": metrics,
            "parallel_workers": args.mlserver_workers,
        }
        (folder / "settings.json").write_text(json.dumps(settings))
    else:
        base = server.argv[: server.argv.index("--port" if "--port" in server.argv else "-p") + 1]
        server.argv = [*base, str(server.port)]


def shipyard_stats(server: Server) -> dict[str, float]:
    """Answered requests by version and dropped log records, from /metrics."""
    stats: dict[str, float] = {}
    try:
        _, text = http(server.base + "/metrics")
    except OSError:
        return stats
    for line in text.decode().splitlines():
        m = re.match(r"shipyard_requests_total\{(.*)\} ([\d.e+]+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            key = f"v{labels.get('version')}/{labels.get('code')}"
            stats[key] = stats.get(key, 0) + float(m.group(2))
        for name in ("shipyard_prediction_log_dropped", "shipyard_routing_change_token"):
            if line.startswith(name + " "):
                stats[name] = float(line.split()[1])
    return stats


def log_rows(project: Path) -> int:
    import pyarrow.parquet as pq

    root = project / ".shipyard" / "logs" / "serving" / "predictions"
    if not root.exists():
        return 0
    return sum(
        pq.ParquetFile(f).metadata.num_rows
        for f in root.rglob("*.parquet")
        if not f.name.startswith(".")
    )


# --- the comparison ------------------------------------------------------------------------


def bench_servers(
    args: argparse.Namespace, setup: Setup, servers: list[Server]
) -> dict[tuple[str, int], list[WrkResult]]:
    results: dict[tuple[str, int], list[WrkResult]] = {}
    spied = False
    for round_no in range(args.rounds):
        order = servers if round_no % 2 == 0 else list(reversed(servers))
        for server in list(order):
            if server not in servers:
                continue
            assign_port(server, args)
            if server.name.startswith("shipyard"):
                shutil.rmtree(setup.project / ".shipyard" / "logs", ignore_errors=True)
            started = time.monotonic()
            try:
                server.start(setup.workdir, f"r{round_no + 1}")
                status, raw = http(server.url, server.body_file.read_bytes())
                got = server.prediction(json.loads(raw)) if status == 200 else raw[:300]
                if status != 200 or int(got) != setup.expected:
                    raise RuntimeError(f"check failed: HTTP {status}, {got!r}")
                ready_s = time.monotonic() - started
                run_wrk(args.wrk, server.url, server.body_file, 16, args.warmup, args.threads)
                before = shipyard_stats(server) if server.name.startswith("shipyard") else {}
                spy = None
                if args.py_spy and not spied and server.name == "shipyard" and server.proc:
                    spy = subprocess.Popen(
                        [
                            *(str(REPO / ".venv" / "bin" / "py-spy"), "record", "-o", args.py_spy),
                            *("--pid", str(server.proc.pid), "-r", "250"),
                            *("-d", str(max(1, round(args.duration) - 1))),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT,
                    )
                    spied = True
                line = []
                for conns in args.connections:
                    result = run_wrk(
                        args.wrk,
                        server.url,
                        server.body_file,
                        conns,
                        args.duration,
                        args.threads,
                        server.proc.pid if server.proc else None,
                    )
                    results.setdefault((server.name, conns), []).append(result)
                    line.append(
                        f"c{conns}: {result.rps:7.0f} req/s p50 {result.p50_ms:6.2f} ms "
                        f"p99 {result.p99_ms:7.2f} ms fail {result.failed} cpu "
                        f"{result.cpu_us:.0f} µs/req {result.cores:.2f} cores "
                        f"(load {result.load:.1f})"
                    )
                    if spy is not None:
                        spy.wait(timeout=60)
                        spy = None
                extra = ""
                if server.name.startswith("shipyard"):
                    after = shipyard_stats(server)
                    v1 = after.get("v1/200", 0) - before.get("v1/200", 0)
                    v2 = after.get("v2/200", 0) - before.get("v2/200", 0)
                    extra = (
                        f" | v2 share {v2 / max(1, v1 + v2):.1%}, log dropped "
                        f"{after.get('shipyard_prediction_log_dropped', 0):.0f}"
                    )
                server.stop()
                if server.name.startswith("shipyard"):
                    answered = shipyard_stats_total(results, server.name, round_no)
                    extra += f", log rows {log_rows(setup.project)} (>= {answered} timed)"
                print(
                    f"  round {round_no + 1} {server.name:<13} ready {ready_s:4.1f} s | "
                    + " | ".join(line)
                    + extra,
                    flush=True,
                )
            except Exception as exc:
                print(f"  round {round_no + 1} {server.name}: FAILED: {exc}", flush=True)
                server.stop()
                if round_no == 0:
                    servers.remove(server)
            finally:
                server.stop()
    return results


def shipyard_stats_total(
    results: dict[tuple[str, int], list[WrkResult]], name: str, round_no: int
) -> int:
    total = 0
    for (server, _), runs in results.items():
        if server == name and len(runs) > round_no:
            total += runs[round_no].requests
    return total


def fmt_runs(values: list[float], spec: str) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, spec)
    return f"{median:{spec}} ({'/'.join(format(v, spec.lstrip('>0123456789')) for v in values)})"


def report(
    args: argparse.Namespace,
    servers: list[Server],
    results: dict[tuple[str, int], list[WrkResult]],
) -> dict[tuple[str, int], dict[str, float]]:
    medians: dict[tuple[str, int], dict[str, float]] = {}
    print()
    print(
        f"medians over {args.rounds} round(s), each round's figure in brackets "
        f"(wrk -t{args.threads} -cN -d{args.duration:g}s, {args.warmup:g} s warm-up)"
    )
    header = (
        f"{'server':<13} {'conns':>5}  {'req/s':<18} {'p50 ms':<20} {'p99 ms':<22} "
        f"{'failed':>6}  {'cpu µs/req':<18} {'cores':<10} {'load1':<9}"
    )
    print(header)
    print("-" * len(header))
    for server in servers:
        for conns in args.connections:
            runs = results.get((server.name, conns))
            if not runs:
                continue
            rps = [r.rps for r in runs]
            p50 = [r.p50_ms for r in runs]
            p99 = [r.p99_ms for r in runs]
            cpu = [r.cpu_us for r in runs]
            medians[(server.name, conns)] = {
                "rps": statistics.median(rps),
                "p50": statistics.median(p50),
                "p99": statistics.median(p99),
                "cpu": statistics.median(cpu),
            }
            loads = "/".join(f"{r.load:.1f}" for r in runs)
            cores = "/".join(f"{r.cores:.2f}" for r in runs)
            print(
                f"{server.name:<13} {conns:>5}  {fmt_runs(rps, '.0f'):<18} "
                f"{fmt_runs(p50, '.2f'):<20} {fmt_runs(p99, '.2f'):<22} "
                f"{sum(r.failed for r in runs):>6}  {fmt_runs(cpu, '.0f'):<18} {cores:<10} "
                f"{loads:<9}"
            )
    spread = [
        (max(r.rps for r in runs) - min(r.rps for r in runs))
        / statistics.median(r.rps for r in runs)
        for runs in results.values()
        if len(runs) > 1
    ]
    if spread:
        print(
            f"noise: the rounds of one cell differ by {statistics.median(spread):.0%} "
            f"(median), {max(spread):.0%} at most, in req/s; cpu µs/req is the server "
            "process group's CPU time per request, which other jobs move much less"
        )
    print()
    print("ratios (medians; goal in brackets):")
    for name in [s.name for s in servers if s.name.startswith("shipyard")]:
        for conns in args.connections:
            mine = medians.get((name, conns))
            if mine is None:
                continue
            parts = []
            for other, goal in (("mlflow", GOAL_VS_MLFLOW), ("fastapi", GOAL_VS_FASTAPI)):
                theirs = medians.get((other, conns))
                if theirs:
                    ratio = mine["rps"] / theirs["rps"]
                    verdict = "ok" if ratio >= goal else "MISSED"
                    parts.append(f"{name}/{other} {ratio:.2f} (>= {goal:g}: {verdict})")
            theirs = medians.get(("mlserver", conns))
            if theirs:
                parts.append(f"{name}/mlserver {mine['rps'] / theirs['rps']:.2f}")
            if parts:
                print(f"  c{conns:<3} " + "  ".join(parts))
            cpu_parts = [
                f"{other}/{name} {medians[(other, conns)]['cpu'] / mine['cpu']:.2f}"
                for other in ("mlflow", "fastapi", "mlserver")
                if (other, conns) in medians and mine["cpu"] > 0
            ]
            if cpu_parts:
                print(f"       by server CPU per request: {'  '.join(cpu_parts)}")
        mine, bare = medians.get((name, 16)), medians.get(("fastapi", 16))
        if mine and bare:
            verdict = "ok" if mine["p99"] <= bare["p99"] else "MISSED"
            print(
                f"  p99 at 16 connections: {name} {mine['p99']:.2f} ms vs bare fastapi "
                f"{bare['p99']:.2f} ms (no worse: {verdict})"
            )
    return medians


# --- routing changes under load -------------------------------------------------------------


def routing_test(args: argparse.Namespace, setup: Setup, server: Server) -> None:
    from shipyard.core.routing import Arm, RoutingTable
    from shipyard.project import open_project
    from shipyard.serving.control import ControlPlane

    print()
    print(
        f"routing changes under load: wrk -c{args.routing_connections} "
        f"-d{args.routing_duration:g}s on {server.name} while the table changes "
        f"{args.routing_changes} times (via {args.routing_via})"
    )
    assign_port(server, args)
    project = open_project(setup.project)
    control = ControlPlane(project.metadata)
    splits = [((1, 50.0), (2, 50.0)), ((1, 90.0), (2, 10.0))]
    changes: list[tuple[float, str]] = []
    failures: list[str] = []
    try:
        server.start(setup.workdir, "routing")
        run_wrk(args.wrk, server.url, server.body_file, 16, args.warmup, args.threads)
        before = shipyard_stats(server)
        stop = threading.Event()
        interval = args.routing_duration / (args.routing_changes + 1)

        def changer() -> None:
            for i in range(args.routing_changes):
                if stop.wait(interval):
                    return
                arms = splits[i % 2]
                began = time.perf_counter()
                try:
                    if args.routing_via == "api":
                        table = RoutingTable(MODEL, tuple(Arm(v, w) for v, w in arms))
                        control.set_table(table, actor="bench")
                    else:
                        split = ",".join(f"{v}={w:g}" for v, w in arms)
                        subprocess.run(
                            [args.shipyard, "routing", "set", MODEL, "--split", split],
                            cwd=setup.project,
                            check=True,
                            capture_output=True,
                            timeout=60,
                        )
                    changes.append((time.perf_counter() - began, f"{arms[0][1]:g}/{arms[1][1]:g}"))
                except Exception as exc:
                    failures.append(f"change {i + 1}: {exc}")

        thread = threading.Thread(target=changer, name="routing-changer")
        thread.start()
        result = run_wrk(
            args.wrk,
            server.url,
            server.body_file,
            args.routing_connections,
            args.routing_duration,
            args.threads,
            server.proc.pid if server.proc else None,
        )
        stop.set()
        thread.join()
        wanted = control.change_token()
        deadline = time.monotonic() + 10
        after = shipyard_stats(server)
        while after.get("shipyard_routing_change_token") != wanted and time.monotonic() < deadline:
            time.sleep(0.2)
            after = shipyard_stats(server)
        v1 = after.get("v1/200", 0) - before.get("v1/200", 0)
        v2 = after.get("v2/200", 0) - before.get("v2/200", 0)
        other = sum(v for k, v in after.items() if "/" in k and not k.endswith("/200")) - sum(
            v for k, v in before.items() if "/" in k and not k.endswith("/200")
        )
        server.stop()
        seconds = sorted(s for s, _ in changes)
        print(
            f"  {result.requests} requests, {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, cpu {result.cpu_us:.0f} µs/req (load {result.load:.1f})"
        )
        print(
            f"  table changes applied: {len(changes)} of {args.routing_changes}"
            + (
                f" (each {statistics.median(seconds) * 1000:.0f} ms median, "
                f"{seconds[-1] * 1000:.0f} ms max)"
                if seconds
                else ""
            )
            + (f"; failed: {failures}" if failures else "")
        )
        token = after.get("shipyard_routing_change_token", -1)
        picked = "picked up" if token == wanted else "NOT picked up"
        print(
            f"  gateway change token {token:.0f} vs store {wanted} ({picked}); "
            f"answered by v1 {v1:.0f}, v2 {v2:.0f} (v2 share {v2 / max(1, v1 + v2):.1%}, "
            f"between 10% and 50% as the table alternated); non-200 in metrics {other:.0f}"
        )
        verdict = "ok" if result.failed == 0 and not failures else "MISSED"
        print(
            f"  failed requests: non-2xx {result.non2xx}, socket errors {result.socket_errors} "
            f"(goal 0: {verdict})"
        )
    except Exception as exc:
        print(f"  FAILED: {exc}")
    finally:
        server.stop()
        project.close()


# --- where the time goes -----------------------------------------------------------------


def per_call_us(fn: Callable[[], Any], repeat: int = 5, budget: float = 0.15) -> float:
    """Median over ``repeat`` loops of about ``budget`` seconds each, per call."""
    started = time.perf_counter()
    fn()
    n = max(20, min(5000, int(budget / max(time.perf_counter() - started, 1e-6))))
    best = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(best)


def breakdown(
    args: argparse.Namespace, setup: Setup, medians: dict[tuple[str, int], dict[str, float]]
) -> None:
    """One request's cost through Shipyard's request path, stage by stage, in-process."""
    import asyncio
    import warnings

    import numpy as np
    import orjson
    import pandas as pd

    from shipyard.project import open_project
    from shipyard.serving import gateway_for
    from shipyard.serving.app import create_app, json_response
    from shipyard.serving.inputs import decode_json, rows_from_payload, validate_rows

    print()
    print("where the time goes: one request through Shipyard's path, in-process (µs per call)")
    project = open_project(setup.project)
    gateway = gateway_for(project, log_dir=setup.workdir / "inproc-log")
    gateway.start()
    try:
        body = (setup.workdir / "body-record.json").read_bytes()
        served = gateway.pool.get(MODEL, 1)
        payload = decode_json(body)
        rows = rows_from_payload(payload)
        values = validate_rows(rows, served.inputs, served.types, 10_000)
        frame = pd.DataFrame(values, columns=served.inputs)
        decision = gateway.decide(MODEL, {})
        answer = gateway.answer(MODEL, decision, values, served)
        sk = served.loaded.model
        estimator = getattr(sk, "model", sk)
        x = np.asarray(values, dtype=float)
        coef_t, intercept = estimator.coef_.T.copy(), estimator.intercept_
        labels = (MODEL, served.label, decision.arm)
        response = {
            "model": MODEL,
            "version": 1,
            "arm": decision.arm,
            "request_id": answer.request_id,
            "predictions": answer.predictions,
            "probabilities": answer.probabilities,
        }

        def metrics() -> None:
            gateway.metrics.requests.labels(*labels, "200").inc()
            gateway.metrics.latency.labels(*labels).observe(0.0003)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            served.loaded.predict(frame)
        warned = {str(w.message)[:90] for w in caught}
        array_model = getattr(served.loaded, "array_model", None)
        path = "compiled numpy twin" if array_model is not None else "DataFrame + scikit-learn"
        stages: list[tuple[str, Callable[[], Any], bool]] = [
            ("JSON decode (stdlib json + strict hooks)", lambda: decode_json(body), True),
            ("  for scale: orjson.loads", lambda: orjson.loads(body), False),
            ("payload -> rows", lambda: rows_from_payload(payload), True),
            (
                "validate rows",
                lambda: validate_rows(rows, served.inputs, served.types, 10_000),
                True,
            ),
            (
                "route (routed_attributes + decide)",
                lambda: (gateway.routed_attributes(MODEL), gateway.decide(MODEL, {})),
                True,
            ),
            (
                f"model step: gateway.answer ({path})",
                lambda: gateway.answer(MODEL, decision, values, served),
                True,
            ),
        ]
        if array_model is not None:
            stages.append(
                (
                    "  of which: np.asarray + compiled predict_proba",
                    lambda: array_model.predict_proba(np.asarray(values, dtype=np.float64)),
                    False,
                )
            )
        stages += [
            (
                "  ref: DataFrame construction",
                lambda: pd.DataFrame(values, columns=served.inputs),
                False,
            ),
            (
                "  ref: frame[names] (column selection in predict)",
                lambda: frame[served.inputs],
                False,
            ),
            (
                "  ref: sklearn predict on the DataFrame",
                lambda: served.loaded.predict(frame),
                False,
            ),
            (
                "  ref: sklearn predict_proba on the DataFrame",
                lambda: served.loaded.predict_proba(frame),
                False,
            ),
            ("  ref: sklearn predict on a numpy row", lambda: estimator.predict(x), False),
            (
                "  ref: the same arithmetic in numpy",
                lambda: 1 / (1 + np.exp(-(x @ coef_t + intercept))) > 0.5,
                False,
            ),
            ("metrics (requests counter, latency histogram)", metrics, True),
            (
                "record: row/prediction metrics + prediction log append",
                lambda: gateway.record(MODEL, answer, "127.0.0.1"),
                True,
            ),
            (
                "  of which: observe_predictions (np.unique over labels)",
                lambda: gateway.metrics.observe_predictions(MODEL, "1", answer.predictions),
                False,
            ),
            ("response body (orjson) + Response", lambda: json_response(response), True),
        ]
        total = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if warned else "default")
            for label, fn, counted in stages:
                us = per_call_us(fn)
                total += us if counted else 0
                print(f"  {label:<60} {us:8.1f}")
        print(f"  {'sum of the stages above (unindented)':<60} {total:8.1f}")
        if warned:
            print(f"  note: predict on the DataFrame warns each call: {sorted(warned)}")

        app = create_app(gateway)
        headers = [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/v1/models/{MODEL}/predict",
            "raw_path": f"/v1/models/{MODEL}/predict".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
        }
        statuses: list[int] = []

        async def one() -> None:
            delivered = False

            async def receive() -> dict[str, Any]:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(dict(scope), receive, send)

        async def loop(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                await one()
            return (time.perf_counter() - started) / n * 1e6

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asyncio.run(loop(200))
            asgi = statistics.median(asyncio.run(loop(1000)) for _ in range(3))
            if args.cprofile:
                import cProfile
                import io
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                asyncio.run(loop(args.cprofile))
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
                stats.print_stats(30)
        bad = [s for s in statuses if s != 200]
        print(
            f"  {'whole ASGI app in-process (Starlette + all the above)':<60} {asgi:8.1f}"
            + (f"  ({len(bad)} non-200!)" if bad else "")
        )
        if args.cprofile:
            print(f"\ncProfile of {args.cprofile} in-process requests (top 30 by own time):")
            print(out.getvalue().split("\n\n", 1)[-1].rstrip())
        for name in ("shipyard", "fastapi"):
            m = medians.get((name, 16))
            if m:
                print(
                    f"  {'over HTTP at c16: 1 s / ' + name + ' req/s (2 cores, wrk on one)':<60} "
                    f"{1e6 / m['rps']:8.1f}"
                )
    finally:
        gateway.stop()
        project.close()


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    if shutil.which(args.wrk) is None:
        print(f"wrk not found ({args.wrk}): install it with `apt-get install -y wrk`")
        return 0
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        model_dir = Path(args.model_dir)
        ensure_model(model_dir, Path(args.anchors))
        row = json.loads((model_dir / "sample_row.json").read_text())
        expected = json.loads((model_dir / "expected.json").read_text())["predict"]
        setup = Setup(
            workdir,
            model_dir,
            workdir / "shipyard",
            [f"f{i}" for i in range(len(row))],
            row,
            int(expected),
        )
        servers, notes = make_servers(args, setup)
        print(
            f"serving_vs_servers: {len(servers)} servers x {len(args.connections)} connection "
            f"counts x {args.rounds} round(s), {args.duration:g} s each; {os.cpu_count()} CPUs, "
            f"{platform.system()} {platform.release()}, load {load1():.1f}; workdir {workdir}"
        )
        print(f"issue figures for scale: {ISSUE_FIGURES}")
        for server in servers:
            print(f"  {server.name:<13} {server.version}  [{server.note}]")
        for note in notes:
            print(f"note: {note}")
        sys.stdout.flush()
        results = bench_servers(args, setup, servers)
        medians = report(args, servers, results)
        plain = next((s for s in servers if s.name == "shipyard"), None)
        if plain is None and not args.no_routing and "shipyard" not in args.servers:
            print("\nrouting test skipped: shipyard is not among --servers")
        elif plain is not None and not args.no_routing:
            routing_test(args, setup, plain)
        if plain is not None and not args.no_breakdown:
            try:
                breakdown(args, setup, medians)
            except Exception as exc:
                print(f"  breakdown FAILED: {exc!r}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"\nkept {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tracking and registry next to MLflow on SQLite: runs, metric search, versions, aliases.

The workload of the issue: log 2,000 runs with 10 params and 10 metrics each; search
the runs by a metric filter (``m0 > 0.5``); register 200 versions; resolve
``MODEL@production`` 1,000 times. Goal: at least 5 times MLflow's throughput on each,
with every write durable and audited.

Each tool runs in its own fresh process on a fresh SQLite database, one after the
other within a round, in an order that rotates every round; medians over the rounds
are reported. Timings are taken inside the process around each phase, after one
untimed warm-up operation of each kind (in a separate experiment/project/model), so
neither import time nor schema creation is counted.

* MLflow (its own venv, /tmp/anchors/mlflow): ``MlflowClient`` on ``sqlite:///…`` with
  a local artifact root. Runs: ``create_run`` + ``log_batch`` (10 params, 10 metrics) +
  ``set_terminated``, MLflow's fastest path; for reference, a few runs through the
  fluent ``start_run``/``log_params``/``log_metrics`` too. Search: ``search_runs(
  filter_string="metrics.m0 > 0.5", max_results=50000)``. Versions:
  ``create_model_version`` of one saved model (it records the source URI only); for
  reference, a few ``mlflow.sklearn.log_model(..., registered_model_name=...)``, which
  also stores the model. Alias: ``get_model_version_by_alias``. SQLite as MLflow
  leaves it: rollback journal, ``synchronous=FULL`` (MLflow sets no pragma).
* Shipyard (the dev venv): ``MetadataStore.create_run`` + ``finish_run`` (params and
  metrics as dicts); ``MetadataStore.search_runs("bench", "m0", ">", 0.5)`` (filtered in
  SQL); ``Registry.register`` of 200 distinct small skops models (each is loaded to
  check it, hashed, written to the artifact store with fsync, and recorded with its
  audit entry in the same transaction); ``Registry.get("m@production")``. Twice: as
  shipped (WAL, ``synchronous=NORMAL``: a commit survives a process crash, but the
  last commits can be lost on power loss or an OS crash), and with
  ``synchronous=FULL`` (WAL fsynced at every commit: durable like MLflow's setup).

A benchmark, not a test: it prints figures and exits 0 whatever they are.

    .venv/bin/python bench/registry_vs_mlflow.py [--rounds 3] [--runs 2000]
        [--versions 200] [--lookups 1000] [--profile] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("SHIPYARD_BENCH_ANCHORS", "/tmp/anchors"))
GOAL = 5.0  # Shipyard's throughput / MLflow's, at least, on every phase
ISSUE_MLFLOW = {
    "runs": "≈ 58 runs/s",
    "search": "≈ 0.9 s",
    "version": "≈ 2.9 ms",
    "alias": "≈ 1.7 ms",
}
SEED = 7


# --- the workload (stdlib only: this file also runs in MLflow's venv) -------------------
def workload(runs: int, params: int, metrics: int) -> list[tuple[dict, dict]]:
    rng = random.Random(SEED)
    return [
        (
            {f"p{j}": rng.randint(0, 1000) for j in range(params)},
            {f"m{j}": rng.random() for j in range(metrics)},
        )
        for _ in range(runs)
    ]


def small_model(seed: int):
    """A distinct small scikit-learn model per seed (untimed)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(100, 4))
    labels = (features[:, 0] + rng.normal(scale=0.5, size=100) > 0).astype(int)
    return LogisticRegression().fit(features, labels)


def timed(phase: str, out: dict, profile_dir: str | None):
    """Context manager: wall time of a phase into ``out``, optionally under cProfile."""
    import contextlib

    @contextlib.contextmanager
    def manager():
        profiler = None
        if profile_dir:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            out[phase] = time.perf_counter() - start
            out[f"cpu_{phase}"] = time.process_time() - cpu
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(Path(profile_dir) / f"{phase}.prof"))

    return manager()


# --- MLflow worker (runs under MLflow's interpreter) ------------------------------------
def mlflow_worker(args: argparse.Namespace) -> dict:
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    work = Path(args.workdir)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    artifacts = (work / "mlartifacts").as_uri()
    experiment = client.create_experiment("bench", artifact_location=artifacts)
    warmup = client.create_experiment("warmup", artifact_location=artifacts)
    mlflow.sklearn.save_model(
        small_model(0), str(work / "saved"), pip_requirements=["scikit-learn"]
    )
    source = str(work / "saved")
    data = workload(args.runs, args.params, args.metrics)
    now = int(time.time() * 1000)

    def log(experiment_id: str, params: dict, metrics: dict) -> None:
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run_id)

    def search(experiment_id: str) -> int:
        found = client.search_runs([experiment_id], "metrics.m0 > 0.5", max_results=50000)
        return len(found)

    # untimed warm-up of every call
    log(warmup, *data[0])
    search(warmup)
    client.create_registered_model("warmup")
    client.create_model_version("warmup", source)
    client.set_registered_model_alias("warmup", "production", "1")
    client.get_model_version_by_alias("warmup", "production")

    out: dict = {"tool": "mlflow", "version": mlflow.__version__}
    with timed("runs", out, args.profile_dir):
        for params, metrics in data:
            log(experiment, params, metrics)
    searches, cpus = [], []
    for _ in range(args.searches):
        start, cpu = time.perf_counter(), time.process_time()
        out["matched"] = search(experiment)
        searches.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    out["search"], out["cpu_search"] = statistics.median(searches), statistics.median(cpus)
    client.create_registered_model("m")
    with timed("versions", out, args.profile_dir):
        for _ in range(args.versions):
            client.create_model_version("m", source)
    client.set_registered_model_alias("m", "production", str(args.versions))
    with timed("lookups", out, args.profile_dir):
        for _ in range(args.lookups):
            found = client.get_model_version_by_alias("m", "production")
    assert int(found.version) == args.versions

    # reference paths: the fluent API, and registering by logging the model
    fluent = client.create_experiment("fluent", artifact_location=artifacts)
    start = time.perf_counter()
    for params, metrics in data[: args.reference]:
        with mlflow.start_run(experiment_id=fluent):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
    out["fluent_runs"] = (time.perf_counter() - start) / args.reference
    models = [small_model(seed) for seed in range(args.reference)]
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=fluent):
        for model in models:
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="logged",
                pip_requirements=["scikit-learn"],
            )
    out["logged_versions"] = (time.perf_counter() - start) / args.reference
    return out


# --- Shipyard worker (runs under the dev venv) -------------------------------------------
def shipyard_worker(args: argparse.Namespace) -> dict:
    import skops.io as sio

    from shipyard.registry.service import Registry
    from shipyard.store import open_artifacts, open_metadata

    work = Path(args.workdir)
    metadata = open_metadata(f"sqlite:///{work / 'shipyard.db'}")
    if args.synchronous:
        _set_synchronous(metadata.engine, args.synchronous)
    statements = _count_statements(metadata.engine) if args.profile_dir else None
    registry = Registry(metadata, open_artifacts(str(work / "artifacts")), {})
    data = workload(args.runs, args.params, args.metrics)
    folders = []
    for seed in range(args.versions + 1):  # distinct models: every put really writes
        folder = work / "models" / str(seed)
        folder.mkdir(parents=True)
        sio.dump(small_model(seed), folder / "model.skops")
        (folder / "signature.json").write_text('{"inputs": ["a", "b", "c", "d"]}')
        folders.append(folder)

    def log(project: str, params: dict, metrics: dict) -> None:
        run = metadata.create_run(project, params=params)
        metadata.finish_run(run.id, "succeeded", metrics=metrics)

    # untimed warm-up of every call
    log("warmup", *data[0])
    metadata.search_runs("warmup", "m0", ">", 0.5)
    registry.register("warmup", folders[-1], actor="bench")
    registry.set_alias("warmup:1", "production", actor="bench")
    registry.get("warmup@production")

    out: dict = {"tool": "shipyard", "pragmas": _pragmas(metadata)}
    counts = {}
    with timed("runs", out, args.profile_dir):
        for params, metrics in data:
            log("bench", params, metrics)
    counts["runs"] = _take(statements)
    searches, cpus = [], []
    for _ in range(args.searches):
        start, cpu = time.perf_counter(), time.process_time()
        out["matched"] = len(metadata.search_runs("bench", "m0", ">", 0.5))
        searches.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    out["search"], out["cpu_search"] = statistics.median(searches), statistics.median(cpus)
    _take(statements)
    with timed("versions", out, args.profile_dir):
        for folder in folders[: args.versions]:
            registry.register("m", folder, actor="bench")
    counts["versions"] = _take(statements)
    registry.set_alias(f"m:{args.versions}", "production", actor="bench")
    _take(statements)
    with timed("lookups", out, args.profile_dir):
        for _ in range(args.lookups):
            found = registry.get("m@production")
    counts["lookups"] = _take(statements)
    assert found.version == args.versions
    audit = metadata.verify_audit()
    registers = len(metadata.events(action="model.register"))
    out["audit"] = {"ok": audit.ok, "entries": audit.entries, "model.register": registers}
    if statements is not None:
        out["statements"] = counts
    metadata.close()
    return out


def _set_synchronous(engine, level: str) -> None:
    """Applied after Shipyard's own connect hook (which sets NORMAL) on new connections."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.execute(f"PRAGMA synchronous={level}")

    engine.dispose()  # drop the connection opened before the hook existed


def _pragmas(metadata) -> dict:
    with metadata.transaction(write=False) as tx:
        journal = tx.exec_driver_sql("PRAGMA journal_mode").scalar()
        level = tx.exec_driver_sql("PRAGMA synchronous").scalar()
    return {"journal_mode": journal, "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL"}[level]}


def _count_statements(engine) -> list[int]:
    from sqlalchemy import event

    counter = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args) -> None:
        counter[0] += 1

    return counter


def _take(counter: list[int] | None) -> int | None:
    if counter is None:
        return None
    value, counter[0] = counter[0], 0
    return value


# --- driver -------------------------------------------------------------------------------
def fsync_latency(folder: Path, count: int = 50) -> float:
    """Median seconds to write 4 KiB to a new file, fsync it, rename it and fsync the
    folder: the floor under one durable artifact write on this filesystem."""
    folder.mkdir(parents=True, exist_ok=True)
    times = []
    for index in range(count):
        start = time.perf_counter()
        tmp, final = folder / f".{index}.tmp", folder / str(index)
        with open(tmp, "wb") as handle:
            handle.write(os.urandom(4096))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_worker(kind: str, python: str, args: argparse.Namespace, work: Path, extra=()) -> dict:
    work.mkdir(parents=True)
    command = [python, str(Path(__file__).resolve()), "--worker", kind, "--workdir", str(work)]
    for option in ("runs", "params", "metrics", "versions", "lookups", "searches", "reference"):
        command += [f"--{option}", str(getattr(args, option))]
    result = subprocess.run([*command, *extra], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{kind} worker failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def speeds(result: dict, args: argparse.Namespace, prefix: str = "") -> dict[str, float]:
    """Per-phase figures in display units: runs/s, s, ms per version, ms per lookup
    (``prefix="cpu_"``: the same from the process's CPU time instead of wall time)."""
    return {
        "runs": args.runs / result[f"{prefix}runs"],
        "search": result[f"{prefix}search"],
        "version": 1000 * result[f"{prefix}versions"] / args.versions,
        "alias": 1000 * result[f"{prefix}lookups"] / args.lookups,
    }


def report(results: dict[str, list[dict]], args: argparse.Namespace, prefix: str = "") -> None:
    medians = {
        tool: {
            k: statistics.median(speeds(r, args, prefix)[k] for r in rs)
            for k in ("runs", "search", "version", "alias")
        }
        for tool, rs in results.items()
    }
    mlflow = medians["mlflow"]
    labels = {
        "runs": f"log {args.runs} runs ({args.params} params + {args.metrics} metrics), runs/s",
        "search": "search runs by metric (m0 > 0.5), s",
        "version": f"create a version ({args.versions} in a row), ms each",
        "alias": f"resolve m@production ({args.lookups}x), ms each",
    }
    tools = [t for t in results if t != "mlflow"]
    head = f"{'phase':<52} {'mlflow':>9} {'issue':>12}"
    head += "".join(f" {t:>15} {'ratio':>6}" for t in tools)
    print(head + f" {'goal':>6}")
    for phase, label in labels.items():
        issue = ISSUE_MLFLOW[phase] if not prefix else ""
        line = f"{label:<52} {mlflow[phase]:>9.3f} {issue:>12}"
        for tool in tools:
            mine = medians[tool][phase]
            ratio = mine / mlflow[phase] if phase == "runs" else mlflow[phase] / mine
            mark = "" if ratio >= GOAL else "!"
            line += f" {mine:>15.3f} {ratio:>5.1f}{mark or ' '}"
        print(line + f" {'>=' + str(GOAL):>6}")
    print("ratio = Shipyard throughput / MLflow throughput (higher is better); ! = below goal")


def details(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    fluent = statistics.median(r["fluent_runs"] for r in results["mlflow"])
    logged = statistics.median(r["logged_versions"] for r in results["mlflow"])
    print(f"\nMLflow reference paths (median of rounds, {args.reference} each):")
    print(f"  fluent start_run + log_params + log_metrics: {1 / fluent:8.1f} runs/s")
    print(f"  sklearn.log_model(registered_model_name=…):   {1000 * logged:8.1f} ms per version")
    print("\nround by round (runs/s, search s, ms/version, ms/lookup; matched runs):")
    for tool, rs in results.items():
        for index, r in enumerate(rs):
            s = speeds(r, args)
            extra = f" pragmas={r['pragmas']}" if "pragmas" in r else f" mlflow {r['version']}"
            print(
                f"  {tool:<16} round {index + 1}: {s['runs']:8.1f} {s['search']:7.3f} "
                f"{s['version']:7.2f} {s['alias']:7.3f}  matched={r['matched']}{extra}"
            )
            if "audit" in r:
                print(f"  {'':<16}          audit: {r['audit']}")


def profile(args: argparse.Namespace, work: Path) -> None:
    import pstats

    folder = work / "profile"
    folder.mkdir()
    result = run_worker(
        "shipyard", sys.executable, args, work / "profiled", ["--profile-dir", str(folder)]
    )
    counts = result["statements"]
    print("\nShipyard under cProfile (one more round, as shipped; times inflated by profiling)")
    per = {"runs": args.runs, "versions": args.versions, "lookups": args.lookups}
    for phase, count in per.items():
        per_item = counts[phase] / count
        print(f"\n--- {phase}: {result[phase]:.3f} s, {per_item:.1f} SQL statements per item")
        stats = pstats.Stats(str(folder / f"{phase}.prof"))
        stats.sort_stats("tottime").print_stats(args.profile_top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--params", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=5, help="searches per round (median)")
    parser.add_argument("--reference", type=int, default=20, help="MLflow reference-path items")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile Shipyard afterwards")
    parser.add_argument("--profile-top", type=int, default=18)
    parser.add_argument("--mlflow-python", default=str(ANCHORS / "mlflow/bin/python"))
    parser.add_argument("--workdir", help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--worker", choices=("mlflow", "shipyard"), help=argparse.SUPPRESS)
    parser.add_argument("--synchronous", help=argparse.SUPPRESS)
    parser.add_argument("--profile-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker = mlflow_worker if args.worker == "mlflow" else shipyard_worker
        print(json.dumps(worker(args)))
        return
    if not Path(args.mlflow_python).exists():
        print(f"MLflow is not installed at {args.mlflow_python}; see bench/README.md")
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="shipyard-bench-registry-"))
    tools = {
        "mlflow": (args.mlflow_python, []),
        "shipyard": (sys.executable, []),
        "shipyard(FULL)": (sys.executable, ["--synchronous", "FULL"]),
    }
    expected = sum(
        1 for _, metrics in workload(args.runs, args.params, args.metrics) if metrics["m0"] > 0.5
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, scratch {work}")
    print(f"{args.rounds} rounds; order rotates each round; {expected} runs have m0 > 0.5\n")
    results: dict[str, list[dict]] = {name: [] for name in tools}
    try:
        for index in range(args.rounds):
            names = list(tools)
            names = names[index % len(names) :] + names[: index % len(names)]
            for name in names:
                python, extra = tools[name]
                kind = "mlflow" if name == "mlflow" else "shipyard"
                result = run_worker(kind, python, args, work / f"r{index}-{name}", extra)
                assert result["matched"] == expected, (name, result["matched"], expected)
                results[name].append(result)
                print(f"  round {index + 1}: {name} done", file=sys.stderr)
        mlflow_db = work / "r0-mlflow" / "mlflow.db"
        with sqlite3.connect(mlflow_db) as conn:
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        print(f"MLflow's SQLite: journal_mode={journal}, synchronous=FULL (SQLite's default)")
        floor = fsync_latency(work / "fsync")
        print(f"one durable 4 KiB write (fsync, rename, fsync dir): {floor * 1000:.2f} ms\n")
        print("wall time (median of rounds)")
        report(results, args)
        print("\nCPU time of the benchmark process (median of rounds): what load from other")
        print("processes distorts least; it leaves out waiting for fsync and for the CPU")
        report(results, args, "cpu_")
        details(results, args)
        if args.profile:
            profile(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

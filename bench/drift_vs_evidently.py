"""Data drift: Shipyard next to Evidently, alibi-detect and plain scipy on one data set.

The workload is the anchor drift data (/work/shared/anchors/drift_data.py): a
reference of 100k rows and a current window of 1M rows, 20 numeric columns (n0..n19)
and 5 categorical ones (c0..c4, small integer codes), with a shift in n0 (mean +0.5
sd), n1 (sd x1.5) and c0 (level shares changed). The script runs the generator once,
writes ``ref.parquet`` and ``cur.parquet``, and then, for each round, runs every tool
in its own process and virtual environment, in an order that rotates every round:

* ``shipyard``  ``compute_drift`` with the default settings (this repository's venv);
* ``evidently`` ``Report([DataDriftPreset()])`` with the same column types
  (/tmp/anchors/evidently);
* ``alibi``     alibi-detect's ``TabularDrift`` (KS for numeric, chi-square for
  categorical, p < 0.05 per feature) (/tmp/anchors/alibi);
* ``scipy``     plain ``ks_2samp`` + ``chi2_contingency`` per column, p < 0.05.

Each child reads the Parquet files (timed as ``read``), runs the drift computation
(timed as ``compute``: everything from the loaded frames to per-column verdicts,
including any conversion the tool needs), and reports the columns it flagged and its
own peak resident memory (``ru_maxrss``). ``CPU`` is the compute step's CPU time
(``time.process_time``, all threads): on a shared, loaded machine it moves much less
than wall time. ``process`` is the child's wall time from the outside, start-up and
imports included. Medians over the rounds are printed,
with ratios against Shipyard and the columns each tool flagged against the columns
that were really shifted.

The Evidently and alibi-detect venvs need pyarrow to read Parquet
(``/tmp/anchors/<tool>/bin/pip install pyarrow``); a tool whose interpreter is
missing is skipped with a note. A benchmark, not a test: it prints figures and exits 0.

    .venv/bin/python bench/drift_vs_evidently.py [--rounds 3] [--workdir DIR] [--keep]
        [--tools shipyard,evidently,alibi,scipy]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANCHORS = Path(os.environ.get("SHIPYARD_BENCH_ANCHORS", "/tmp/anchors"))
DATA_SCRIPT = Path("/work/shared/anchors/drift_data.py")
NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SHIFTED = {"n0", "n1", "c0"}

_PRELUDE = """
import json, resource, sys, time
import pandas as pd
folder = sys.argv[1]
NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
"""
_REPORT = """
compute, compute_cpu = time.perf_counter() - start, time.process_time() - cpu
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result = {"read": read, "compute": compute, "compute_cpu": compute_cpu, "peak_mb": peak_mb}
result["flagged"] = sorted(flagged)
print(json.dumps(result))
"""

RUNNERS = {
    "shipyard": """
import pyarrow.parquet as pq
import scipy.spatial.distance, scipy.stats  # imported lazily by drift: load before the clock
from shipyard.monitor.drift import compute_drift
start = time.perf_counter()
reference, current = pq.read_table(f"{folder}/ref.parquet"), pq.read_table(f"{folder}/cur.parquet")
read = time.perf_counter() - start
start, cpu = time.perf_counter(), time.process_time()
kinds = {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}
flagged = compute_drift(reference, current, columns=kinds).drifted_features()
""",
    "evidently": """
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
start = time.perf_counter()
reference = pd.read_parquet(f"{folder}/ref.parquet")
current = pd.read_parquet(f"{folder}/cur.parquet")
read = time.perf_counter() - start
start, cpu = time.perf_counter(), time.process_time()
definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
snapshot = Report([DataDriftPreset()]).run(
    current_data=Dataset.from_pandas(current, data_definition=definition),
    reference_data=Dataset.from_pandas(reference, data_definition=definition),
)
flagged = []
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type") != "evidently:metric_v2:ValueDrift":
        continue
    p_value = "p_value" in config["method"]
    value, threshold = metric["value"], config["threshold"]
    if (value < threshold) if p_value else (value >= threshold):
        flagged.append(config["column"])
""",
    "alibi": """
import numpy as np
from alibi_detect.cd import TabularDrift
start = time.perf_counter()
reference = pd.read_parquet(f"{folder}/ref.parquet")
current = pd.read_parquet(f"{folder}/cur.parquet")
read = time.perf_counter() - start
start, cpu = time.perf_counter(), time.process_time()
columns = NUMERIC + CATEGORICAL
x_ref = reference[columns].to_numpy(dtype=np.float32)
x_cur = current[columns].to_numpy(dtype=np.float32)
categories = {columns.index(name): None for name in CATEGORICAL}
detector = TabularDrift(x_ref, p_val=0.05, categories_per_feature=categories)
verdict = detector.predict(x_cur, drift_type="feature")["data"]["is_drift"]
flagged = [name for name, drift in zip(columns, verdict) if drift]
""",
    "scipy": """
import numpy as np
from scipy.stats import chi2_contingency, ks_2samp
start = time.perf_counter()
reference = pd.read_parquet(f"{folder}/ref.parquet")
current = pd.read_parquet(f"{folder}/cur.parquet")
read = time.perf_counter() - start
start, cpu = time.perf_counter(), time.process_time()
flagged = [
    n for n in NUMERIC if ks_2samp(reference[n].to_numpy(), current[n].to_numpy()).pvalue < 0.05
]
for name in CATEGORICAL:
    levels = max(int(reference[name].max()), int(current[name].max())) + 1
    frames = (reference, current)
    table = np.vstack([np.bincount(f[name].to_numpy(), minlength=levels) for f in frames])
    table = table[:, table.sum(axis=0) > 0]
    if chi2_contingency(table, correction=False).pvalue < 0.05:
        flagged.append(name)
""",
}


def interpreters(repo: Path) -> dict[str, Path]:
    return {
        "shipyard": repo / ".venv" / "bin" / "python",
        "evidently": ANCHORS / "evidently" / "bin" / "python",
        "alibi": ANCHORS / "alibi" / "bin" / "python",
        "scipy": repo / ".venv" / "bin" / "python",
    }


def make_data(folder: Path) -> None:
    """Run the anchor generator once and write the two Parquet files."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = folder / "npy"
    subprocess.run([sys.executable, str(DATA_SCRIPT), str(raw)], check=True, capture_output=True)
    for name in ("ref", "cur"):
        numbers, codes = np.load(raw / f"{name}_num.npy"), np.load(raw / f"{name}_cat.npy")
        columns = {n: numbers[:, i] for i, n in enumerate(NUMERIC)}
        columns.update({n: codes[:, i] for i, n in enumerate(CATEGORICAL)})
        pq.write_table(pa.table(columns), folder / f"{name}.parquet")
    shutil.rmtree(raw)


def run_tool(python: Path, code: str, folder: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), "-c", _PRELUDE + code + _REPORT, str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process": wall}


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def summarise(results: dict[str, list[dict]]) -> None:
    ok = {tool: runs for tool, runs in results.items() if runs and "error" not in runs[0]}
    for tool, runs in results.items():
        if tool not in ok:
            print(f"{tool}: failed: {runs[0]['error'] if runs else 'not run'}")
    if not ok:
        return
    base = ok.get("shipyard")
    print(
        f"\n{'tool':<10} {'compute s':>10} {'CPU s':>8} {'read s':>8} {'process s':>10} "
        f"{'peak MB':>8} {'compute / shipyard':>19} {'CPU / shipyard':>15}"
    )
    for tool, runs in ok.items():
        ratio = median(runs, "compute") / median(base, "compute") if base else float("nan")
        cpu = median(runs, "compute_cpu") / median(base, "compute_cpu") if base else float("nan")
        print(
            f"{tool:<10} {median(runs, 'compute'):>10.3f} {median(runs, 'compute_cpu'):>8.3f} "
            f"{median(runs, 'read'):>8.3f} {median(runs, 'process'):>10.2f} "
            f"{max(r['peak_mb'] for r in runs):>8.0f} {ratio:>19.1f} {cpu:>15.1f}"
        )
    print(f"\nreally shifted: {sorted(SHIFTED)}")
    reference = ok.get("evidently", [{}])[0].get("flagged")
    for tool, runs in ok.items():
        flagged = runs[0]["flagged"]
        stable = all(r["flagged"] == flagged for r in runs)
        spurious = sorted(set(flagged) - SHIFTED)
        same = "" if reference is None else f", same as Evidently: {flagged == reference}"
        print(f"{tool:<10} flagged {flagged} (spurious: {spurious or 'none'}{same}"
              f"{'' if stable else ', CHANGED between rounds'})")  # fmt: skip
    if base and "evidently" in ok:
        speedup = median(ok["evidently"], "compute") / median(base, "compute")
        print(f"\ngoal: >= 20x faster than Evidently: {speedup:.0f}x")
    if base and "alibi" in ok:
        speedup = median(ok["alibi"], "compute") / median(base, "compute")
        print(f"goal: faster than alibi-detect: {speedup:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files")
    parser.add_argument("--tools", default=",".join(RUNNERS))
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="shipyard-drift-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    tools = [t for t in args.tools.split(",") if t]
    pythons = interpreters(repo)
    for tool in list(tools):
        if not pythons[tool].exists():
            print(f"{tool}: {pythons[tool]} is missing, skipped (see bench/README.md)")
            tools.remove(tool)
    try:
        if not (folder / "cur.parquet").exists():
            started = time.perf_counter()
            make_data(folder)
            print(f"data written to {folder} in {time.perf_counter() - started:.1f}s")
        results: dict[str, list[dict]] = {tool: [] for tool in tools}
        for round_number in range(args.rounds):
            order = tools[round_number % len(tools) :] + tools[: round_number % len(tools)]
            for tool in order:
                result = run_tool(pythons[tool], RUNNERS[tool], folder)
                results[tool].append(result)
                shown = f"{result['compute']:.3f}s" if "compute" in result else result["error"]
                print(f"round {round_number + 1} {tool}: {shown}", flush=True)
        summarise({t: [r for r in runs if "error" not in r] or runs for t, runs in results.items()})
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

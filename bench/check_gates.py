"""Benchmark: `shipyard check` gate by gate, and the data gate against pandera.

Part 1 runs the full check on the credit-risk example scaled to --rows rows (default
100,000) and 30 columns: the example's 8 columns plus numeric and categorical noise
columns. The pipeline (prepare, train, evaluate) runs once, untimed; then the check
runs --rounds times in-process (wall time per gate, median) and once as the CLI.

Part 2 times the data-quality gate on --big-rows rows (default 1,000,000 training
rows, plus a quarter as many held-out rows) and 30 columns against a pandera
validation of the same checks on the same two frames: types, nullability, ranges,
categories, unique columns and duplicate rows, from the same schema (inferred once,
untimed, and given to both as a file). The gate also measures missing shares, leakage
and label shift; pandera does not. Rounds rotate which one goes first. Goal: gate
time / pandera time <= 1.0. For scale, pandera without its duplicate-row check (the
part that costs it most) is timed too.

    .venv/bin/python bench/check_gates.py                 # about 3 minutes
    .venv/bin/python bench/check_gates.py --rows 20000 --big-rows 200000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NOISE_NUMERIC = 14
NOISE_CATEGORICAL = 8


def make_rows(rows: int, seed: int) -> pd.DataFrame:
    """The example's applicants plus noise columns: 30 columns in all."""
    source = resources.files("shipyard.scaffold") / "examples/credit-risk/src/make_data.py"
    with resources.as_file(source) as path:
        frame = runpy.run_path(str(path))["make"](rows, seed)
    rng = np.random.default_rng(seed + 1)
    noise: dict[str, Any] = {}
    for i in range(NOISE_NUMERIC):
        kind = i % 3
        if kind == 0:
            noise[f"num_{i}"] = rng.normal(0, 1, rows).round(4)
        elif kind == 1:
            noise[f"num_{i}"] = rng.lognormal(3, 1, rows).round(2)
        else:
            noise[f"num_{i}"] = rng.integers(0, 1000, rows)
    for i in range(NOISE_CATEGORICAL):
        levels = [f"c{i}_{k}" for k in range(3 + 2 * i)]
        noise[f"cat_{i}"] = rng.choice(levels, rows)
    label = frame.pop("default")
    return pd.concat([frame, pd.DataFrame(noise), label], axis=1)


CARD = "## Intended use\nBenchmark only.\n\n## Limitations\nSynthetic data.\n"


def prepare_project(root: Path, rows: int) -> None:
    """The example with scaled data, its pipeline run, a model card beside it, and
    the trained model registered and promoted to production, so that the baseline
    gate runs its full paired bootstrap (candidate and production are the same)."""
    import shipyard
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    shipyard.init_project(root, example="credit-risk")
    make_rows(rows, 42).to_csv(root / "data/raw.csv", index=False)
    report = shipyard.run(root, quiet=True)
    if report.status != "succeeded":
        sys.exit(f"the example pipeline failed: {report}")
    (root / "MODEL_CARD.md").write_text(CARD)
    with open_project(root) as project:
        registry = open_registry(project)
        card = {"intended_use": "Benchmark only.", "limitations": "Synthetic data."}
        version = registry.register(
            "credit-risk", root / "model", actor="bench", gates={"passed": True}, card=card
        )
        registry.decide(version.ref, actor="bench-reviewer", decision="approve")
        registry.set_alias(version.ref, "production", actor="bench")


def time_check(root: Path, rounds: int) -> tuple[dict[str, list[float]], list[str]]:
    from shipyard.checks.report import record_report, report_folder, write_reports
    from shipyard.checks.runner import run_checks
    from shipyard.project import open_project

    times: dict[str, list[float]] = {}
    statuses: list[str] = []
    for _ in range(rounds):
        started = time.perf_counter()
        with open_project(root) as project:
            report = run_checks(project)
            times.setdefault("(load model + data)", []).append(report.load_seconds)
            for gate in report.gates:
                times.setdefault(gate.name, []).append(gate.seconds)
            written = time.perf_counter()
            write_reports(report, report_folder(project.state_dir, report.id))
            record_report(project, report)
        times.setdefault("(write reports)", []).append(time.perf_counter() - written)
        times.setdefault("total in-process", []).append(time.perf_counter() - started)
        statuses = [f"{g.name}: {g.status}" for g in report.gates]
    return times, statuses


def time_cli(root: Path) -> tuple[float, int]:
    shipyard = Path(sys.executable).with_name("shipyard")
    started = time.perf_counter()
    done = subprocess.run([str(shipyard), "check"], cwd=root, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


def part_one(rows: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        root = Path(tmp) / "credit-risk"
        started = time.perf_counter()
        prepare_project(root, rows)
        prepared = time.perf_counter() - started
        times, statuses = time_check(root, rounds)
        cli, code = time_cli(root)
        train = pd.read_csv(root / "data/prepared/train.csv", nrows=1)
    table = [(name, f"{statistics.median(values):8.3f} s") for name, values in times.items()]
    table.append(("CLI `shipyard check` (wall)", f"{cli:8.3f} s  (exit {code})"))
    print_table(
        f"Part 1: shipyard check, {rows:,} rows x {len(train.columns)} columns "
        f"(pipeline {prepared:.1f} s untimed; median of {rounds} round(s))",
        table,
    )
    print("  gates: " + ", ".join(statuses))


def big_frames(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = make_rows(rows + rows // 4, 7)
    return frame.iloc[:rows].reset_index(drop=True), frame.iloc[rows:].reset_index(drop=True)


def data_gate_runner(root: Path, train: pd.DataFrame, test: pd.DataFrame) -> Any:
    from shipyard.checks.base import CheckContext
    from shipyard.checks.data import data_gate
    from shipyard.config import DataGate

    ctx = CheckContext(root, None, "bench", train, test, "default", list(train.columns[:-1]))
    cfg = DataGate(schema="schema.json", max_missing=0.01, max_duplicates=0.01)
    return lambda: data_gate(ctx, cfg)


def pandera_runner(
    schema: dict[str, Any], train: pd.DataFrame, test: pd.DataFrame, duplicates: bool = True
) -> Any:
    import pandera.pandas as pa

    from shipyard.checks.schema import to_pandera

    reference = to_pandera(schema, duplicates=duplicates)

    def validate() -> int:
        failures = 0
        for frame in (train, test):
            try:
                reference.validate(frame, lazy=True)
            except pa.errors.SchemaErrors as errors:
                failures += len(errors.failure_cases)
        return failures

    return validate


def part_two(rows: int, rounds: int) -> None:
    from shipyard.checks.schema import infer_schema

    train, test = big_frames(rows)
    schema = infer_schema(train, label="default", allow_missing=True)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        root = Path(tmp)
        (root / "schema.json").write_text(json.dumps(schema))
        runners = {
            "shipyard data gate": data_gate_runner(root, train, test),
            "pandera validate (same checks)": pandera_runner(schema, train, test),
            "pandera, no duplicate-row check": pandera_runner(schema, train, test, False),
        }
        times: dict[str, list[float]] = {name: [] for name in runners}
        outcome: dict[str, Any] = {}
        for round_number in range(rounds):
            names = list(runners)
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in order:
                started = time.perf_counter()
                outcome[name] = runners[name]()
                times[name].append(time.perf_counter() - started)
    gate, reference, partial = (statistics.median(v) for v in times.values())
    table = [(name, f"{statistics.median(v):8.3f} s") for name, v in times.items()]
    table.append(("ratio gate / pandera", f"{gate / reference:8.3f}   (goal <= 1.0)"))
    table.append(("ratio gate / pandera w/o duplicates", f"{gate / partial:8.3f}   (for scale)"))
    result = outcome["shipyard data gate"]
    print_table(
        f"Part 2: data-quality gate, train {len(train):,} + test {len(test):,} rows x "
        f"{len(train.columns)} columns (median of {rounds} rounds)",
        table,
    )
    print(f"  gate: {result.status}: {result.summary}")
    print(f"  pandera failure cases: {outcome['pandera validate (same checks)']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the example data")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="training rows, part 2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-check", action="store_true", help="only part 2")
    parser.add_argument("--skip-data", action="store_true", help="only part 1")
    args = parser.parse_args()
    if not args.skip_check:
        part_one(args.rows, args.rounds)
    if not args.skip_data:
        part_two(args.big_rows, args.rounds)


if __name__ == "__main__":
    main()

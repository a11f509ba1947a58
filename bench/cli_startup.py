"""CLI start-up time: ``shipyard --help`` next to ``dvc --help`` and ``mlflow --help``.

Each command is run N times (default 10), round-robin, with the order rotated every
round so no tool always runs right after another; ``python -c pass`` (the interpreter
alone) is run in the same rounds for scale. One untimed warm-up run per command fills
the page cache and the bytecode cache first, so every figure is a warm start.

Bytecode: every tool runs with PYTHONPYCACHEPREFIX set to a scratch folder and
PYTHONDONTWRITEBYTECODE unset, so all of them (shipyard's editable install included,
whose source tree has no __pycache__) run from compiled bytecode, as after a normal
``pip install``, and nothing is written into the repo or the tools' venvs.
``--env-as-is`` runs them with the environment unchanged instead. The script prints a table of
medians and the ratio ``shipyard / min(dvc, mlflow)`` against the goal (<= 0.33).

A benchmark, not a test: it prints figures and exits 0 whatever they are.

    .venv/bin/python bench/cli_startup.py [--runs N] [--shipyard PATH] [--dvc PATH]
                                          [--mlflow PATH] [--python PATH]

Competitors come from their own virtual environments under /tmp/anchors (see
/work/shared/anchors/install-anchors.sh); a missing one is skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("SHIPYARD_BENCH_ANCHORS", "/tmp/anchors"))
GOAL = 0.33

# (env var, default) per tool; the option of the same name overrides both.
DEFAULTS = {
    "shipyard": ("SHIPYARD_BENCH_SHIPYARD", REPO / ".venv" / "bin" / "shipyard"),
    "dvc": ("SHIPYARD_BENCH_DVC", ANCHORS / "dvc" / "bin" / "dvc"),
    "mlflow": ("SHIPYARD_BENCH_MLFLOW", ANCHORS / "mlflow" / "bin" / "mlflow"),
    "python": ("SHIPYARD_BENCH_PYTHON", Path(sys.executable)),
}
# Distribution whose version is printed next to each tool (None: the interpreter's).
DISTRIBUTIONS = {"shipyard": "shipyard-ml", "dvc": "dvc", "mlflow": "mlflow", "python": None}


@dataclass
class Tool:
    name: str
    argv: list[str]
    version: str = "?"
    times: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join([Path(self.argv[0]).name, *self.argv[1:]])


def default_path(name: str) -> str:
    env, default = DEFAULTS[name]
    return os.environ.get(env) or str(default)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (1)")
    parser.add_argument(
        "--env-as-is",
        action="store_true",
        help="do not set up a shared bytecode cache (see the module docstring)",
    )
    for name in ("shipyard", "dvc", "mlflow", "python"):
        env, _ = DEFAULTS[name]
        parser.add_argument(
            f"--{name}",
            default=default_path(name),
            metavar="PATH",
            help=f"the {name} executable (env {env}; default %(default)s)",
        )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def interpreter_of(executable: str) -> str | None:
    """The python next to a console script (venv/bin/python), if there is one."""
    candidate = Path(executable).parent / "python"
    return str(candidate) if candidate.exists() else None


def version_of(name: str, executable: str) -> str:
    """Installed version, read from package metadata (untimed, outside the rounds)."""
    dist = DISTRIBUTIONS[name]
    python = executable if dist is None else interpreter_of(executable)
    if python is None:
        return "?"
    code = (
        "import platform; print(platform.python_version())"
        if dist is None
        else f"import importlib.metadata as m; print(m.version({dist!r}))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "?"


def run_once(argv: list[str], cwd: str, env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - start
    return elapsed, proc.returncode, proc.stderr.decode(errors="replace").strip()


def collect_tools(args: argparse.Namespace) -> tuple[list[Tool], list[str]]:
    tools: list[Tool] = []
    notes: list[str] = []
    for name in ("shipyard", "dvc", "mlflow", "python"):
        path = getattr(args, name)
        resolved = shutil.which(path)
        if resolved is None:
            notes.append(
                f"skipped {name}: no executable at {path}"
                + (
                    " (install it with the dvc/mlflow lines of "
                    "/work/shared/anchors/install-anchors.sh)"
                    if name in ("dvc", "mlflow")
                    else ""
                )
            )
            continue
        argv = [resolved, "-c", "pass"] if name == "python" else [resolved, "--help"]
        tools.append(Tool(name, argv, version_of(name, resolved)))
    return tools, notes


def main() -> int:
    args = parse_args()
    tools, notes = collect_tools(args)

    # Run from an empty folder so no tool finds a project (.dvc/, mlruns/) to look at.
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-cli-") as scratch:
        cwd = os.path.join(scratch, "cwd")
        os.mkdir(cwd)
        env = dict(os.environ)
        if args.env_as_is:
            if env.get("PYTHONDONTWRITEBYTECODE"):
                notes.append(
                    "PYTHONDONTWRITEBYTECODE is set: modules without a __pycache__ "
                    "(shipyard's editable source) are compiled on every run"
                )
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch, "pycache")
        for tool in list(tools):
            for _ in range(args.warmup):
                _, rc, err = run_once(tool.argv, cwd, env)
                if rc != 0:
                    notes.append(f"skipped {tool.name}: '{tool.label}' exited {rc}: {err[-300:]}")
                    tools.remove(tool)
                    break

        print(
            f"cli_startup: {args.runs} timed runs per command after {args.warmup} warm-up, "
            f"round-robin (order rotated each round); {os.cpu_count()} CPUs, "
            f"{platform.system()} {platform.release()}; bytecode: "
            + ("environment as is" if args.env_as_is else "shared scratch cache, warm")
        )
        for note in notes:
            print(f"note: {note}")
        sys.stdout.flush()

        for round_no in range(args.runs):
            shift = round_no % len(tools) if tools else 0
            for tool in tools[shift:] + tools[:shift]:
                elapsed, rc, err = run_once(tool.argv, cwd, env)
                if rc != 0:
                    print(f"note: {tool.name} exited {rc} in round {round_no + 1}: {err[-200:]}")
                tool.times.append(elapsed)

    print()
    header = f"{'tool':<9} {'version':<9} {'median ms':>9} {'min ms':>8} {'max ms':>8}  command"
    print(header)
    print("-" * len(header))
    for tool in tools:
        t = tool.times
        print(
            f"{tool.name:<9} {tool.version:<9} {statistics.median(t) * 1e3:>9.1f} "
            f"{min(t) * 1e3:>8.1f} {max(t) * 1e3:>8.1f}  {tool.label}"
        )

    medians = {tool.name: statistics.median(tool.times) for tool in tools}
    print()
    if "python" in medians:
        base = medians["python"]
        print("over bare interpreter start (median - python -c pass):")
        for name, value in medians.items():
            if name != "python":
                print(f"  {name:<9} +{(value - base) * 1e3:.1f} ms")
        print()
    competitors = {n: medians[n] for n in ("dvc", "mlflow") if n in medians}
    if "shipyard" not in medians:
        print("ratio shipyard / min(dvc, mlflow): n/a (shipyard not run)")
    elif not competitors:
        print("ratio shipyard / min(dvc, mlflow): n/a (neither dvc nor mlflow available)")
    else:
        fastest = min(competitors, key=competitors.__getitem__)
        ratio = medians["shipyard"] / competitors[fastest]
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(
            f"ratio shipyard / min(dvc, mlflow) = {medians['shipyard'] * 1e3:.1f} ms / "
            f"{competitors[fastest] * 1e3:.1f} ms ({fastest}) = {ratio:.3f}   "
            f"goal <= {GOAL}: {verdict}"
        )
        for name, value in competitors.items():
            print(f"  shipyard / {name:<7} = {medians['shipyard'] / value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

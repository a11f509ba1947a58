"""Pipeline engine next to DVC: first run, no-op re-run and hashing a new 1 GiB file.

The workload is the anchor pipeline (/work/shared/anchors/pipeline: prepare ->
featurize -> train over a 1 GiB random ``data/raw.bin``). One work folder holds three
copies of it, all sharing the same input through hard links:

* ``direct/``   the three stage commands run by ``run_direct.sh``, no tool at all;
* ``dvc/``      a git + DVC project with the anchor ``dvc.yaml``;
* ``shipyard/`` a git + Shipyard project (``shipyard init``, then ``shipyard.yaml`` =
  ``project: bench`` plus the ``stages:`` block of ``dvc.yaml``, verbatim).

Stage commands call ``python``. The folder of the DVC executable (a venv with numpy)
goes first on PATH for everything; DVC and ``run_direct.sh`` run the stages on that
interpreter, but Shipyard puts its own interpreter's folder first for its stages. The
script probes which ``python`` each tool really gives its stages (a one-stage project
each) and measures the stage work alone on each interpreter it finds.

Measurements (every command wall-clocked from the outside, medians reported):

1. First run from a clean state, interleaved with ``run_direct.sh`` (the stage work
   alone); the order rotates every round. Before each run the project's outputs,
   lock file and caches are removed (DVC: ``dvc.lock``, ``.dvc/cache``, ``.dvc/tmp``
   and its site cache dir, which DVC 3 keeps outside ``.dvc/`` and this script moves
   into the work folder; Shipyard: ``shipyard.lock`` and ``.shipyard/``), and dirty
   pages are flushed (``os.sync()``, untimed). Overhead = run - stage work on the
   interpreter that tool's stages ran on.
2. No-op re-run: after a short wait (Shipyard re-hashes a file hashed within 2 s of
   its last write once, a guard against same-timestamp edits) and a few warm-up runs,
   ``dvc repro`` and ``shipyard run`` alternate with nothing changed.
3. Hashing a new file of the same size, with fresh random content every round:
   ``dvc add`` (hash + copy into the cache + check-out) next to Shipyard's
   ``hash_file`` (timed inside its process, around the call) and, when the CLI has it,
   ``shipyard data add``; plain reading of the file (8 MiB ``readinto``) gives the
   ceiling. The file is read once, untimed, right before each timed operation, so every
   operation reads it from the page cache. DVC's own md5 (``file_md5``, also timed
   in-process) is shown for scale.

Before each write-heavy timed command (first runs, ``dvc add``, ``shipyard data add``)
a ballast file is written and deleted, so each finds the same just-freed memory (see
``Bench.free_memory``; ``--no-ballast`` turns it off). Besides wall time, the CPU
seconds (user + system) of each command's whole process tree are reported: on a
loaded machine they move much less than wall time.

One untimed warm-up round per tool comes first, and by default every Python process
runs with a shared scratch bytecode cache (PYTHONPYCACHEPREFIX, as in
bench/cli_startup.py), so Shipyard's editable install runs from compiled bytecode as
after a normal install; ``--env-as-is`` turns that off.

A benchmark, not a test: it prints figures and exits 0 whatever they are.

    .venv/bin/python bench/pipeline_vs_dvc.py [--size-mb 1024] [--rounds 3]
        [--noop-runs 10] [--hash-rounds 3] [--workdir DIR] [--keep]

MB/s means 10^6 bytes per second; --size-mb is in MiB.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANCHORS = Path(os.environ.get("SHIPYARD_BENCH_ANCHORS", "/tmp/anchors"))
PIPELINE = Path(os.environ.get("SHIPYARD_BENCH_PIPELINE", "/work/shared/anchors/pipeline"))

GOAL_NOOP = 0.2  # shipyard no-op / dvc no-op, at most
GOAL_OVERHEAD = 0.5  # shipyard first-run overhead / dvc's, at most
GOAL_VS_DVC_ADD = 3.0  # shipyard hash MB/s / dvc add MB/s, at least
GOAL_VS_READ = 0.7  # shipyard hash MB/s / plain read MB/s, at least

SCRIPTS = ("prepare.py", "featurize.py", "train.py", "params_util.py", "params.yaml")
OUTPUTS = ("data/prepared.bin", "data/features.npy", "model.json")
CHUNK = 8 * 1024 * 1024
MIB = 1024 * 1024
OBJECT_DIRS = (".dvc/cache", ".shipyard/artifacts")  # where an add puts the file's copy
FIRST_RUN_BALLAST = 512 * MIB  # more than a first run writes (outputs + cached copies)
SETTLE_S = 2.5  # wait after the last real run before timing no-op runs (rule: 2 s)

DVC_UP_TO_DATE = "Data and pipelines are up to date."
SHIPYARD_UP_TO_DATE = "Everything is up to date."

HASH_CODE = (
    "import sys, time\n"
    "from shipyard.store.hashing import hash_file\n"
    "t = time.perf_counter(); hash_file(sys.argv[1]); print(time.perf_counter() - t)\n"
)
MD5_CODE = (
    "import sys, time\n"
    "from dvc_data.hashfile.hash import file_md5\n"
    "t = time.perf_counter(); file_md5(sys.argv[1]); print(time.perf_counter() - t)\n"
)


class BenchError(Exception):
    """Something the benchmark needs did not work; the message says what."""


@dataclass
class Result:
    seconds: float
    rc: int
    output: str
    cpu: float = 0.0  # user + system seconds of the whole process tree

    def tail(self, chars: int = 600) -> str:
        return self.output.strip()[-chars:]


@dataclass
class Series:
    """Timings of one operation; ``unit`` says whether they are seconds or MB/s."""

    label: str
    command: str
    values: list[float] = field(default_factory=list)
    unit: str = "s"
    cpu: list[float] = field(default_factory=list)  # CPU seconds per run (commands only)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    env: dict[str, str]
    size: int
    shipyard: str
    dvc: str
    shipyard_python: str
    dvc_python: str
    notes: list[str] = field(default_factory=list)
    state_template: Path | None = None  # only if `shipyard run` does not recreate .shipyard/
    has_data_add: bool = False

    def free_memory(self, size: int) -> None:
        """Write and delete a ballast file, leaving ``size`` bytes of just-freed memory.

        On this kind of VM (virtio-balloon free page reporting) memory that has been
        free for a couple of seconds goes back to the host, and the next write to it
        costs host page faults (1 to 2.5 s per GiB here, see bench/README.md on
        artifact_throughput.py): without this, a write-heavy operation is fast or slow
        depending on what ran before it. Its dirty pages are dropped, never written.
        """
        if self.args.no_ballast or size <= 0:
            return
        path = self.work / "ballast.bin"
        block = b"\xa5" * CHUNK
        with open(path, "wb") as handle:
            for _ in range(-(-size // CHUNK)):
                handle.write(block)
        path.unlink()

    @property
    def direct_dir(self) -> Path:
        return self.work / "direct"

    @property
    def dvc_dir(self) -> Path:
        return self.work / "dvc"

    @property
    def shipyard_dir(self) -> Path:
        return self.work / "shipyard"

    @property
    def dvc_site_cache(self) -> Path:
        return self.work / "dvc-site-cache"


# --- helpers -------------------------------------------------------------------------


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> Result:
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    elapsed = time.perf_counter() - start
    output = proc.stdout.decode(errors="replace")
    return Result(elapsed, proc.returncode, output, children_cpu() - cpu)


def must(argv: list[str], cwd: Path, env: dict[str, str]) -> Result:
    result = run(argv, cwd, env)
    if result.rc != 0:
        raise BenchError(f"'{' '.join(argv)}' in {cwd} exited {result.rc}:\n{result.tail()}")
    return result


def label(argv: list[str]) -> str:
    return " ".join([Path(argv[0]).name, *argv[1:]])


def write_random(path: Path, size: int) -> str:
    """Fill ``path`` with ``size`` fresh random bytes; return how they were made.

    An AES-256-CTR keystream under a random key (openssl, several times faster than
    os.urandom on small VMs) when openssl is there, else os.urandom.
    """
    openssl = shutil.which("openssl")
    if openssl:
        zeros = path.with_name(path.name + ".zeros")
        with open(zeros, "wb") as handle:
            handle.truncate(size)  # sparse: reading it costs no disk
        key, iv = os.urandom(32).hex(), os.urandom(16).hex()
        argv = [openssl, "enc", "-aes-256-ctr", "-K", key, "-iv", iv]
        argv += ["-in", str(zeros), "-out", str(path)]
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                check=False,
            )
        finally:
            zeros.unlink(missing_ok=True)
        if proc.returncode == 0 and path.exists() and path.stat().st_size == size:
            return "AES-256-CTR keystream, random key (openssl enc)"
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(64 * MIB, left)
            handle.write(os.urandom(n))
            left -= n
    return "os.urandom"


def read_through(path: Path) -> float:
    """Seconds to read ``path`` in 8 MiB chunks into one reused buffer."""
    view = memoryview(bytearray(CHUNK))
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(view):
            pass
    return time.perf_counter() - start


def link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def version(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return (proc.stdout.strip() or proc.stderr.strip() or "?").splitlines()[-1]


def interpreter_of(executable: str) -> str:
    candidate = Path(executable).parent / "python"
    if not candidate.exists():
        raise BenchError(f"no python next to {executable}: need its virtual environment")
    return str(candidate)


# --- set-up ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb", type=int, default=1024, help="input and hashed file size, MiB (1024)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="first-run rounds (3)")
    parser.add_argument("--noop-runs", type=int, default=10, help="timed no-op runs each (10)")
    parser.add_argument("--noop-warmup", type=int, default=2, help="untimed no-op runs (2)")
    parser.add_argument("--hash-rounds", type=int, default=3, help="new-file hash rounds (3)")
    parser.add_argument(
        "--workdir", type=Path, help="work folder, created; must be empty (default: in /tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the default work folder")
    parser.add_argument(
        "--no-ballast",
        action="store_true",
        help="do not free memory before write-heavy timed operations (see Bench.free_memory)",
    )
    parser.add_argument(
        "--env-as-is",
        action="store_true",
        help="no shared scratch bytecode cache (see the module docstring)",
    )
    parser.add_argument(
        "--shipyard",
        default=os.environ.get("SHIPYARD_BENCH_SHIPYARD") or str(REPO / ".venv/bin/shipyard"),
        metavar="PATH",
        help="the shipyard executable (env SHIPYARD_BENCH_SHIPYARD; default %(default)s)",
    )
    parser.add_argument(
        "--dvc",
        default=os.environ.get("SHIPYARD_BENCH_DVC") or str(ANCHORS / "dvc/bin/dvc"),
        metavar="PATH",
        help="the dvc executable; its folder goes first on PATH, so `python` in the stage "
        "commands is its venv's (with numpy) unless a tool overrides PATH "
        "(env SHIPYARD_BENCH_DVC; default %(default)s)",
    )
    parser.add_argument(
        "--pipeline",
        type=Path,
        default=PIPELINE,
        metavar="DIR",
        help="the anchor pipeline (env SHIPYARD_BENCH_PIPELINE; default %(default)s)",
    )
    args = parser.parse_args()
    for name in ("size_mb", "rounds", "noop_runs", "hash_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.noop_warmup < 0:
        parser.error("--noop-warmup must not be negative")
    return args


def make_env(args: argparse.Namespace, work: Path, dvc: str, notes: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(dvc).parent), env.get("PATH", "")])
    env["DVC_NO_ANALYTICS"] = "1"
    # DVC 3 keeps its hash and link databases in a site cache dir outside the project
    # (default /var/tmp/dvc/repo/<id>): keep it in the work folder, to clean it per round.
    env["DVC_SITE_CACHE_DIR"] = str(work / "dvc-site-cache")
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "bench"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "bench@localhost"
    if args.env_as_is:
        if env.get("PYTHONDONTWRITEBYTECODE"):
            notes.append(
                "PYTHONDONTWRITEBYTECODE is set: modules without a __pycache__ "
                "(shipyard's editable source) are compiled on every run"
            )
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def setup(bench: Bench) -> str:
    """Write the input and the three projects; return how the input was made."""
    work, env = bench.work, bench.env
    pipeline = bench.args.pipeline
    for name in (*SCRIPTS, "dvc.yaml", "run_direct.sh"):
        if not (pipeline / name).is_file():
            raise BenchError(f"{pipeline / name} is missing (see --pipeline)")
    probe = run(["python", "-c", "import numpy"], work, env)
    if probe.rc != 0:
        raise BenchError(
            f"`python` on PATH ({shutil.which('python', path=env['PATH'])}) has no numpy, "
            f"which the stage scripts need:\n{probe.tail()}"
        )

    raw = work / "data" / "raw.bin"
    raw.parent.mkdir(parents=True)
    how = write_random(raw, bench.size)
    os.sync()

    for folder in (bench.direct_dir, bench.dvc_dir, bench.shipyard_dir):
        (folder / "data").mkdir(parents=True)
        for name in SCRIPTS:
            shutil.copyfile(pipeline / name, folder / name)
        link_or_copy(raw, folder / "data" / "raw.bin")
    shutil.copyfile(pipeline / "run_direct.sh", bench.direct_dir / "run_direct.sh")
    stages_yaml = (pipeline / "dvc.yaml").read_text()

    git = ["git", "-c", "init.defaultBranch=main"]
    commit = ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "pipeline"]

    folder = bench.dvc_dir
    (folder / "dvc.yaml").write_text(stages_yaml)
    must([*git, "init", "-q"], folder, env)
    must([bench.dvc, "init", "-q"], folder, env)
    for key in ("core.analytics", "core.check_update"):
        must([bench.dvc, "config", key, "false"], folder, env)
    must(["git", "add", "dvc.yaml", *SCRIPTS, ".dvc", ".dvcignore"], folder, env)
    must(commit, folder, env)

    folder = bench.shipyard_dir
    must([*git, "init", "-q"], folder, env)
    must([bench.shipyard, "init"], folder, env)
    (folder / "shipyard.yaml").write_text("project: bench\n\n" + stages_yaml)
    must(["git", "add", "shipyard.yaml", *SCRIPTS, ".gitignore"], folder, env)
    must(commit, folder, env)
    return how


# --- cleaning between first runs ------------------------------------------------------


def clean_outputs(folder: Path) -> None:
    for rel in OUTPUTS:
        (folder / rel).unlink(missing_ok=True)


def clean_dvc(bench: Bench) -> None:
    folder = bench.dvc_dir
    clean_outputs(folder)
    (folder / "dvc.lock").unlink(missing_ok=True)
    for path in (folder / ".dvc" / "cache", folder / ".dvc" / "tmp", bench.dvc_site_cache):
        shutil.rmtree(path, ignore_errors=True)


def clean_shipyard(bench: Bench) -> None:
    folder = bench.shipyard_dir
    clean_outputs(folder)
    (folder / "shipyard.lock").unlink(missing_ok=True)
    shutil.rmtree(folder / ".shipyard", ignore_errors=True)
    if bench.state_template is not None:
        shutil.copytree(bench.state_template, folder / ".shipyard")


def make_state_template(bench: Bench) -> None:
    """A fresh `shipyard init` state folder, copied in after each clean-up."""
    scratch = bench.work / "shipyard-init-template"
    scratch.mkdir()
    must([bench.shipyard, "init"], scratch, bench.env)
    bench.state_template = scratch / ".shipyard"


# --- phases ---------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    argv: list[str]
    cwd: Path
    clean: Callable[[], None]
    series: Series
    env: dict[str, str]
    baseline: str = ""  # a tool's: the name of the direct run on its stages' interpreter


PROBE_STAGES = (
    "stages:\n"
    "  probe:\n"
    '    cmd: python -c "import sys; print(sys.executable)" > which.txt\n'
    "    outs:\n"
    "      - which.txt\n"
)


def probe_stage_python(bench: Bench) -> dict[str, str]:
    """The ``python`` each tool's stage commands really get (a one-stage project each)."""
    found = {}
    for tool in ("dvc", "shipyard"):
        folder = bench.work / f"probe-{tool}"
        folder.mkdir()
        if tool == "dvc":
            (folder / "dvc.yaml").write_text(PROBE_STAGES)
            must([bench.dvc, "init", "-q", "--no-scm"], folder, bench.env)
            must([bench.dvc, "repro"], folder, bench.env)
        else:
            must([bench.shipyard, "init"], folder, bench.env)
            (folder / "shipyard.yaml").write_text("project: probe\n\n" + PROBE_STAGES)
            must([bench.shipyard, "run"], folder, bench.env)
        found[tool] = (folder / "which.txt").read_text().strip()
        shutil.rmtree(folder)
    return found


def check_outputs(contender: Contender) -> str | None:
    missing = [rel for rel in OUTPUTS if not (contender.cwd / rel).is_file()]
    return f"{contender.name} left no {', '.join(missing)}" if missing else None


def direct_contenders(bench: Bench, stage_python: dict[str, str]) -> list[Contender]:
    """``run_direct.sh`` once per interpreter the tools run their stages on."""
    users: dict[str, list[str]] = {}
    for tool, exe in stage_python.items():
        users.setdefault(exe, []).append(tool)
    directs = []
    for exe, tools in users.items():
        env = dict(bench.env)
        env["PATH"] = os.pathsep.join([str(Path(exe).parent), bench.env["PATH"]])
        title = "run_direct.sh" if len(users) == 1 else f"{' + '.join(tools)}'s python"
        directs.append(
            Contender(
                f"direct ({exe})",
                ["sh", "run_direct.sh"],
                bench.direct_dir,
                lambda: clean_outputs(bench.direct_dir),
                Series(f"stage work ({title})", f"sh run_direct.sh  [python = {exe}]"),
                env,
            )
        )
    return directs


def first_runs(bench: Bench, stage_python: dict[str, str]) -> list[Contender]:
    directs = direct_contenders(bench, stage_python)
    tools = [
        Contender(
            "dvc",
            [bench.dvc, "repro"],
            bench.dvc_dir,
            lambda: clean_dvc(bench),
            Series("first run: dvc", "dvc repro"),
            bench.env,
            f"direct ({stage_python['dvc']})",
        ),
        Contender(
            "shipyard",
            [bench.shipyard, "run"],
            bench.shipyard_dir,
            lambda: clean_shipyard(bench),
            Series("first run: shipyard", "shipyard run"),
            bench.env,
            f"direct ({stage_python['shipyard']})",
        ),
    ]
    contenders = directs + tools
    # Warm-up round (untimed): bytecode, page cache, and a check that all of them work.
    models: dict[str, bytes] = {}
    for c in contenders:
        c.clean()
        result = run(c.argv, c.cwd, c.env)
        if (
            result.rc != 0
            and c.name == "shipyard"
            and not (bench.shipyard_dir / ".shipyard").exists()
        ):
            bench.notes.append(
                "`shipyard run` did not recreate .shipyard/ after it was removed; each "
                "round copies in a fresh `shipyard init` state folder instead"
            )
            make_state_template(bench)
            c.clean()
            result = run(c.argv, c.cwd, c.env)
        if result.rc != 0:
            raise BenchError(f"warm-up '{label(c.argv)}' exited {result.rc}:\n{result.tail()}")
        problem = check_outputs(c)
        if problem:
            raise BenchError(problem)
        models[c.name] = (c.cwd / "model.json").read_bytes()
    if len(set(models.values())) != 1:
        bench.notes.append("model.json differs between the direct, dvc and shipyard runs")

    print(
        f"first run: {bench.args.rounds} rounds of {len(directs)} x direct / dvc / shipyard ",
        end="",
    )
    for round_no in range(bench.args.rounds):
        shift = round_no % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            c.clean()
            bench.free_memory(FIRST_RUN_BALLAST)
            os.sync()  # nobody pays for another's write-back
            result = run(c.argv, c.cwd, c.env)
            if result.rc != 0:
                raise BenchError(
                    f"'{label(c.argv)}' exited {result.rc} in round {round_no + 1}:\n"
                    f"{result.tail()}"
                )
            problem = check_outputs(c)
            if problem:
                bench.notes.append(f"round {round_no + 1}: {problem}")
            c.series.values.append(result.seconds)
            c.series.cpu.append(result.cpu)
        print(".", end="", flush=True)
    print()
    return contenders


def noop_runs(bench: Bench) -> list[Series]:
    tools = [
        ("dvc", [bench.dvc, "repro"], bench.dvc_dir, DVC_UP_TO_DATE),
        ("shipyard", [bench.shipyard, "run"], bench.shipyard_dir, SHIPYARD_UP_TO_DATE),
    ]
    series = {name: Series(f"no-op: {name}", label(argv)) for name, argv, _, _ in tools}
    time.sleep(SETTLE_S)
    for name, argv, cwd, _ in tools:
        for _ in range(bench.args.noop_warmup):
            result = run(argv, cwd, bench.env)
            if result.rc != 0:
                raise BenchError(f"no-op warm-up of {name} exited {result.rc}:\n{result.tail()}")
    did_work = dict.fromkeys(series, 0)
    print(f"no-op: {bench.args.noop_runs} rounds of dvc / shipyard ", end="")
    for round_no in range(bench.args.noop_runs):
        order = tools if round_no % 2 == 0 else tools[::-1]
        for name, argv, cwd, marker in order:
            result = run(argv, cwd, bench.env)
            if result.rc != 0:
                raise BenchError(f"no-op {name} exited {result.rc}:\n{result.tail()}")
            if marker not in result.output:
                did_work[name] += 1
            series[name].values.append(result.seconds)
            series[name].cpu.append(result.cpu)
        print(".", end="", flush=True)
    print()
    for name, count in did_work.items():
        if count:
            bench.notes.append(f"{count} timed no-op run(s) of {name} did not report up to date")
    return list(series.values())


def in_process_seconds(result: Result, what: str) -> float:
    if result.rc != 0:
        raise BenchError(f"{what} exited {result.rc}:\n{result.tail()}")
    return float(result.output.strip().splitlines()[-1])


def hash_rounds(bench: Bench) -> dict[str, Series]:
    size, env = bench.size, bench.env
    folder = bench.work / "hash"
    folder.mkdir()
    mb = size / 1e6
    series = {
        "read": Series(
            "plain read (8 MiB readinto)", "open(f).readinto(8 MiB buffer)", unit="MB/s"
        ),
        "hash": Series(
            "shipyard hash_file (in-process)",
            "python -c 'hash_file(path)', timed around the call",
            unit="MB/s",
        ),
        "dvc add": Series("dvc add (wall)", "dvc add data/new-N.bin", unit="MB/s"),
        "md5": Series(
            "dvc file_md5 (in-process, scale)",
            "python -c 'dvc_data...file_md5(path)', timed around the call",
            unit="MB/s",
        ),
    }
    if bench.has_data_add:
        series["data add"] = Series(
            "shipyard data add (wall)", "shipyard data add data/new-N.bin", unit="MB/s"
        )

    md5_probe = run([bench.dvc_python, "-c", "import dvc_data.hashfile.hash"], folder, env)
    if md5_probe.rc != 0:
        del series["md5"]
        bench.notes.append("dvc_data.hashfile.hash not importable: DVC's md5 alone not shown")

    # Warm-up (untimed): the add code paths' bytecode, on a small file.
    small = 1 * MIB
    for tool_dir, argv in (
        (bench.dvc_dir, [bench.dvc, "add"]),
        (bench.shipyard_dir, [bench.shipyard, "data", "add"]),
    ):
        if argv[0] == bench.shipyard and not bench.has_data_add:
            continue
        before = snapshot(tool_dir)
        (tool_dir / "data" / "warmup.bin").write_bytes(os.urandom(small))
        must([*argv, "data/warmup.bin"], tool_dir, env)
        forget_added(tool_dir, before)
    must(
        [bench.shipyard_python, "-c", HASH_CODE, str(bench.work / "data" / "raw.bin")], folder, env
    )

    print(f"hashing: {bench.args.hash_rounds} rounds, a new {size // MIB} MiB file each ", end="")
    ops = list(series)
    for round_no in range(bench.args.hash_rounds):
        new = folder / f"new-{round_no}.bin"
        write_random(new, size)
        os.sync()
        in_dvc = bench.dvc_dir / "data" / new.name
        in_shipyard = bench.shipyard_dir / "data" / new.name
        snapshots = {"dvc": snapshot(bench.dvc_dir), "shipyard": snapshot(bench.shipyard_dir)}
        link_or_copy(new, in_dvc)
        if bench.has_data_add:
            link_or_copy(new, in_shipyard)
        shift = round_no % len(ops)
        for op in ops[shift:] + ops[:shift]:
            if op in ("dvc add", "data add"):  # the operations that write
                bench.free_memory(2 * size + size // 8)
            os.sync()
            read_through(new)  # into the page cache, untimed
            if op == "read":
                seconds = read_through(new)
            elif op == "hash":
                result = run([bench.shipyard_python, "-c", HASH_CODE, str(new)], folder, env)
                seconds = in_process_seconds(result, "shipyard hash_file")
            elif op == "md5":
                result = run([bench.dvc_python, "-c", MD5_CODE, str(new)], folder, env)
                seconds = in_process_seconds(result, "dvc file_md5")
            elif op == "dvc add":
                seconds = must([bench.dvc, "add", f"data/{new.name}"], bench.dvc_dir, env).seconds
            else:
                argv = [bench.shipyard, "data", "add", f"data/{new.name}"]
                seconds = must(argv, bench.shipyard_dir, env).seconds
            series[op].values.append(mb / seconds)
        forget_added(bench.dvc_dir, snapshots["dvc"])
        forget_added(bench.shipyard_dir, snapshots["shipyard"])
        new.unlink()
        os.sync()
        print(".", end="", flush=True)
    print()
    return series


def snapshot(folder: Path) -> set[Path]:
    """A project's files outside its tools' state folders, plus its cached objects."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".dvc", ".shipyard")]
        found.update(Path(dirpath, name) for name in filenames)
    for objects in OBJECT_DIRS:
        for dirpath, _, filenames in os.walk(folder / objects):
            found.update(Path(dirpath, name) for name in filenames)
    return found


def forget_added(folder: Path, before: set[Path]) -> None:
    """Undo an add: delete what it created (data file, pointer file, cached object)."""
    for path in snapshot(folder) - before:
        path.unlink(missing_ok=True)


# --- report ---------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_report(
    bench: Bench,
    versions: dict[str, str],
    input_how: str,
    stage_python: dict[str, str],
    contenders: list[Contender],
    noop: list[Series],
    hashing: dict[str, Series],
) -> None:
    args = bench.args
    print()
    print(f"{'times (s)':<31}  median     min     max   n  cpu s  command")
    print("-" * 95)
    for s in [c.series for c in contenders] + noop:
        print(
            f"{s.label:<31} {s.median:>7.3f} {min(s.values):>7.3f} {max(s.values):>7.3f} "
            f"{len(s.values):>3} {s.cpu_median:>6.2f}  {s.command}"
        )
    print(
        "(cpu s: median user + system CPU seconds of the command's whole process tree; "
        "less sensitive to other load than wall time)"
    )
    print()
    title = f"throughput (MB/s, {bench.size // MIB} MiB)"
    print(f"{title:<31}  median     min     max   n  command")
    print("-" * 88)
    for s in hashing.values():
        print(
            f"{s.label:<31} {s.median:>7.0f} {min(s.values):>7.0f} {max(s.values):>7.0f} "
            f"{len(s.values):>3}  {s.command}"
        )

    by_name = {c.name: c for c in contenders}
    overhead: dict[str, float] = {}
    print()
    print("first-run overhead (run - stage work on the same interpreter), medians:")
    for tool in ("dvc", "shipyard"):
        c = by_name[tool]
        base = by_name[c.baseline].series
        overhead[tool] = c.series.median - base.median
        per_round = [v - b for v, b in zip(c.series.values, base.values, strict=True)]
        print(
            f"  {tool:<8} {c.series.median:.3f} - {base.median:.3f} = {overhead[tool]:.3f} s  "
            f"(per round: {', '.join(f'{v:.2f}' for v in per_round)})"
        )
    dvc_over, sy_over = overhead["dvc"], overhead["shipyard"]
    cpu_over = {
        tool: by_name[tool].series.cpu_median - by_name[by_name[tool].baseline].series.cpu_median
        for tool in ("dvc", "shipyard")
    }
    print(
        f"  in CPU seconds: dvc {cpu_over['dvc']:.2f}, shipyard {cpu_over['shipyard']:.2f}"
        + (
            f" (ratio {cpu_over['shipyard'] / cpu_over['dvc']:.3f}, for reference only)"
            if cpu_over["dvc"] > 0
            else ""
        )
    )

    dvc_noop, sy_noop = noop
    print()
    print("ratios:")
    ratio = sy_noop.median / dvc_noop.median
    print(
        f"(1) no-op re-run       shipyard / dvc = {sy_noop.median:.3f} s / "
        f"{dvc_noop.median:.3f} s = {ratio:.3f}   goal <= {GOAL_NOOP}: "
        f"{verdict(ratio <= GOAL_NOOP)}"
    )
    if dvc_over > 0:
        ratio = sy_over / dvc_over
        print(
            f"(2) first-run overhead shipyard / dvc = {sy_over:.3f} s / {dvc_over:.3f} s = "
            f"{ratio:.3f}   goal <= {GOAL_OVERHEAD}: {verdict(ratio <= GOAL_OVERHEAD)}"
        )
    else:
        print("(2) first-run overhead: n/a (dvc's median run was not slower than the stage work)")
    read, sy_hash, dvc_add = hashing["read"], hashing["hash"], hashing["dvc add"]
    ratio = sy_hash.median / dvc_add.median
    print(
        f"(3) new-file hashing   shipyard hash_file / dvc add = {sy_hash.median:.0f} / "
        f"{dvc_add.median:.0f} MB/s = {ratio:.2f}   goal >= {GOAL_VS_DVC_ADD}: "
        f"{verdict(ratio >= GOAL_VS_DVC_ADD)}"
    )
    ratio = sy_hash.median / read.median
    print(
        f"                       shipyard hash_file / plain read = {sy_hash.median:.0f} / "
        f"{read.median:.0f} MB/s = {ratio:.2f}   goal >= {GOAL_VS_READ}: "
        f"{verdict(ratio >= GOAL_VS_READ)}"
    )
    if "data add" in hashing:
        add = hashing["data add"]
        ratio = add.median / dvc_add.median
        print(
            f"                       shipyard data add / dvc add = {add.median:.0f} / "
            f"{dvc_add.median:.0f} MB/s = {ratio:.2f}   goal >= {GOAL_VS_DVC_ADD}: "
            f"{verdict(ratio >= GOAL_VS_DVC_ADD)}"
        )
        ratio = add.median / read.median
        print(
            f"                       shipyard data add / plain read = {add.median:.0f} / "
            f"{read.median:.0f} MB/s = {ratio:.2f}   goal >= {GOAL_VS_READ}: "
            f"{verdict(ratio >= GOAL_VS_READ)}"
        )
    else:
        print(
            "                       (`shipyard data add` does not exist in this build: "
            "pure hashing (a) only)"
        )

    print()
    print("how:")
    print(
        f"  input: {bench.size // MIB} MiB data/raw.bin ({input_how}), hard-linked into "
        "direct/, dvc/ and shipyard/"
    )
    print(
        f"  PATH starts with {Path(bench.dvc).parent} (python with numpy) for every command; "
        "`python` in the stage commands turned out to be (probed with a one-stage "
        "project per tool):"
    )
    for tool, exe in stage_python.items():
        print(f"    {tool:<8} {exe}")
    print(
        f"  first run: {args.rounds} interleaved rounds (order rotated) after one warm-up; "
        "before each run: outputs, lock file and caches removed, "
        + ("" if args.no_ballast else f"{FIRST_RUN_BALLAST // MIB} MiB of memory freed, ")
        + "os.sync()"
    )
    print("    dvc:      rm dvc.lock .dvc/cache .dvc/tmp $DVC_SITE_CACHE_DIR outputs; dvc repro")
    print("    shipyard: rm shipyard.lock .shipyard/ outputs; shipyard run")
    print(
        f"  no-op: waited {SETTLE_S} s after the last real run (Shipyard re-hashes a file "
        f"hashed within 2 s of its last write once), then {args.noop_warmup} untimed warm-up "
        f"run(s) each, then {args.noop_runs} alternating rounds"
    )
    print(
        f"  hashing: {args.hash_rounds} rounds, each a new random file; read once (untimed) "
        "right before every timed operation, so all of them read it from the page cache; "
        "dvc add = md5 + copy into .dvc/cache + check-out copy; "
        + (
            "ballast off"
            if args.no_ballast
            else "before dvc add and shipyard data add (the operations that write), "
            f"{(2 * bench.size + bench.size // 8) // MIB} MiB of memory freed"
        )
    )
    print(
        "  bytecode: "
        + ("environment as is" if args.env_as_is else "shared scratch PYTHONPYCACHEPREFIX, warm")
    )
    print(f"  work folder: {bench.work}; load average at the end {os.getloadavg()[0]:.2f}")
    print(
        f"  versions: dvc {versions['dvc']}, {versions['shipyard']}, "
        f"python {versions['python']} (bench)"
    )
    for note in bench.notes:
        print(f"note: {note}")


def main() -> int:
    args = parse_args()
    shipyard = shutil.which(args.shipyard)
    dvc = shutil.which(args.dvc)
    if shipyard is None or dvc is None:
        missing = args.shipyard if shipyard is None else args.dvc
        print(f"pipeline_vs_dvc: no executable at {missing}", file=sys.stderr)
        if dvc is None:
            print(
                "  create it: python3 -m venv /tmp/anchors/dvc && "
                "/tmp/anchors/dvc/bin/pip install dvc blake3 xxhash numpy",
                file=sys.stderr,
            )
        return 2

    if args.workdir is not None:
        work = args.workdir.absolute()
        if work.exists() and any(work.iterdir()):
            print(f"pipeline_vs_dvc: --workdir {work} is not empty", file=sys.stderr)
            return 2
        work.mkdir(parents=True, exist_ok=True)
        owned = False
    else:
        work = Path(tempfile.mkdtemp(prefix="shipyard-bench-pipeline-", dir="/tmp"))
        owned = not args.keep

    size = args.size_mb * MIB
    free = shutil.disk_usage(work).free
    if free < 6 * size:
        print(f"pipeline_vs_dvc: {free // MIB} MiB free in {work}; ~{6 * args.size_mb} needed")
        return 2

    notes: list[str] = []
    env = make_env(args, work, dvc, notes)
    try:
        bench = Bench(
            args,
            work,
            env,
            size,
            shipyard,
            dvc,
            interpreter_of(shipyard),
            interpreter_of(dvc),
            notes,
        )
        versions = {
            "dvc": version([dvc, "--version"], env),
            "shipyard": version([shipyard, "--version"], env),
            "python": platform.python_version(),
        }
        bench.has_data_add = run([shipyard, "data", "--help"], work, env).rc == 0
        print(
            f"pipeline_vs_dvc: dvc {versions['dvc']}, {versions['shipyard']}, "
            f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
            f"input {args.size_mb} MiB; load average {os.getloadavg()[0]:.2f}; "
            f"work folder {work}"
        )
        print(f"  dvc:      {dvc}\n  shipyard: {shipyard}")
        if not bench.has_data_add:
            print("  `shipyard data add` does not exist (shipyard data --help fails)")
        sys.stdout.flush()
        input_how = setup(bench)
        stage_python = probe_stage_python(bench)
        if len(set(stage_python.values())) > 1:
            print(
                "  the tools run the stages on different interpreters: stage work is "
                "measured on each, and each tool's overhead is taken against its own"
            )
        contenders = first_runs(bench, stage_python)
        noop = noop_runs(bench)
        hashing = hash_rounds(bench)
        print_report(bench, versions, input_how, stage_python, contenders, noop, hashing)
    except BenchError as exc:
        print(f"\npipeline_vs_dvc: {exc}", file=sys.stderr)
        print(f"work folder left for inspection: {work}", file=sys.stderr)
        return 1
    if owned:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

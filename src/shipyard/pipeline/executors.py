"""Executors run one stage's commands. ``local`` runs them here, in the workspace.

An executor is anything with ``run(job, cancel) -> ExecResult`` (a Protocol, not a base
class). The Ray executor (``pipeline.ray_executor``) runs the same job on a cluster and
returns its outputs through the artifact store instead of the shared disk.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from shipyard.pipeline.spec import Stage

if TYPE_CHECKING:
    import subprocess

__all__ = ["Console", "ExecResult", "Executor", "LocalExecutor", "StageJob"]

_TAIL = 20


class Console:
    """Thread-safe line output, each line prefixed with the stage it came from."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self.stream.write(text.rstrip("\n") + "\n")
            self.stream.flush()

    def stage_line(self, stage: str, text: str) -> None:
        self.line(f"{stage:>12} | {text}")


@dataclass(frozen=True)
class StageJob:
    stage: Stage
    root: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    artifacts_url: str | None = None  # where remote executors exchange inputs and outputs


@dataclass
class ExecResult:
    exit_code: int
    duration: float
    resources: dict[str, Any] = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)
    outs: dict[str, str | None] | None = None  # set when outputs came back via the store


class Executor(Protocol):
    name: str

    def run(self, job: StageJob, cancel: threading.Event, console: Console) -> ExecResult: ...


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the command's whole process group, SIGKILL it after ``grace`` seconds."""
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_commands(job: StageJob, cancel: threading.Event, console: Console, cwd: Path) -> ExecResult:
    """Run a stage's commands in ``cwd`` one after another, stopping at the first failure.

    Output goes to the console (prefixed) and to ``job.log_path``; resource use of the
    whole process tree is sampled while each command runs.
    """
    env = {**os.environ, **job.stage.env, **job.env, "SHIPYARD_STAGE": job.stage.name}
    # `python` in a stage means the interpreter running Shipyard, even in an
    # un-activated virtual environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
    started = time.monotonic()
    resources: dict[str, Any] = {}
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log_path, "w", encoding="utf-8", errors="replace") as log:
        for command in job.stage.commands:
            log.write(f"$ {command}\n")
            code, resources = _run_one(
                command, cwd, env, cancel, console, job.stage.name, log, tail
            )
            if code != 0:
                return ExecResult(code, time.monotonic() - started, resources, list(tail))
    return ExecResult(0, time.monotonic() - started, resources, list(tail))


def _run_one(
    command: str,
    cwd: Path,
    env: dict[str, str],
    cancel: threading.Event,
    console: Console,
    name: str,
    log: IO[str],
    tail: collections.deque[str],
) -> tuple[int, dict[str, Any]]:
    import subprocess  # here, not at import: a no-op run starts no process

    from shipyard.pipeline.resources import ResourceSampler

    proc = subprocess.Popen(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: Ctrl-C is ours to relay
    )

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            log.write(text + "\n")
            tail.append(text)
            console.stage_line(name, text)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    with ResourceSampler(proc.pid) as sampler:
        code, usage = _reap(proc, cancel)
    reader.join(timeout=5)
    return code, {**sampler.summary(), **usage}


def _reap(proc: subprocess.Popen[bytes], cancel: threading.Event) -> tuple[int, dict[str, Any]]:
    """Wait for the command with wait4, which also reports what the whole process tree
    used (CPU seconds, peak RSS), even for commands too short to sample."""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        if cancel.wait(0.05):
            _stop(proc)
            return proc.wait(), {}
    return proc.returncode, {
        "cpu_user_seconds": round(usage.ru_utime, 3),
        "cpu_system_seconds": round(usage.ru_stime, 3),
        "max_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
    }


class LocalExecutor:
    """Runs stages as subprocesses in the project's own working tree."""

    name = "local"

    def run(self, job: StageJob, cancel: threading.Event, console: Console) -> ExecResult:
        return run_commands(job, cancel, console, job.root / job.stage.wdir)

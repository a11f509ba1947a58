"""The project lock: one ``shipyard run`` at a time per project.

An advisory ``flock`` on ``.shipyard/run.lock``: the kernel releases it when the holder
exits, however it exits, so a crash never leaves a stale lock behind. The holder writes
who it is into the file so a second run can say whom it is waiting for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from shipyard.errors import LockHeld

__all__ = ["project_lock"]


@contextlib.contextmanager
def project_lock(state_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the project's run lock; raise LockHeld naming the holder if it is taken."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "run.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockHeld(
                        f"another Shipyard process holds the project lock: {_holder(path)}",
                        hint="wait for it to finish (the lock is released when it exits)",
                    ) from None
                time.sleep(0.1)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(["shipyard", *sys.argv[1:]])[:200],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']} since {info['since']} (`{info['command']}`)"
    except (OSError, ValueError, KeyError):
        return "an unknown process"

"""``shipyard.lock``: the last successful state of every stage, committed to git.

It records, per stage, the fingerprint, the content ids of deps and outs and the
param values. JSON with sorted keys and indentation, so it diffs well in review and is
also valid YAML. Written atomically after each stage, so a crash mid-run keeps what
already succeeded.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import PipelineError

__all__ = ["LOCK_FILE", "LockEntry", "LockFile"]

LOCK_FILE = "shipyard.lock"
_SCHEMA = 1


@dataclass(frozen=True)
class LockEntry:
    fingerprint: str
    cmd: list[str]
    deps: dict[str, str]
    params: dict[str, Any]
    outs: dict[str, str | None] = field(default_factory=dict)  # None: not cached


class LockFile:
    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._mutex = threading.Lock()
        self.stages: dict[str, LockEntry] = self._read()

    def _read(self) -> dict[str, LockEntry]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise PipelineError(
                f"{self.path} is corrupt: {exc}",
                hint=f"restore it from git (`git checkout {LOCK_FILE}`) or delete it to "
                "re-run every stage",
            ) from None
        if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
            raise PipelineError(
                f"{self.path} has an unknown format", hint="upgrade Shipyard or delete the file"
            )
        return {name: LockEntry(**entry) for name, entry in data["stages"].items()}

    def update(self, name: str, entry: LockEntry, keep: list[str]) -> None:
        """Set one stage's entry, drop stages no longer in the pipeline, write atomically."""
        with self._mutex:
            self.stages[name] = entry
            self.stages = {n: self.stages[n] for n in keep if n in self.stages}
            body = {
                "schema": _SCHEMA,
                "stages": {n: e.__dict__ for n, e in self.stages.items()},
            }
            tmp = self.path.with_name(f".{LOCK_FILE}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.path)

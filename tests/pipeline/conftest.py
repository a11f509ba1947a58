from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from shipyard.pipeline.executors import Console
from shipyard.pipeline.runner import RunOptions, RunReport, run_pipeline
from shipyard.project import Project

PIPELINE = {
    "project": "demo",
    "stages": {
        "a": {"cmd": "cat in.txt > a.txt", "deps": ["in.txt"], "outs": ["a.txt"]},
        "b": {
            "cmd": "cat a.txt other.txt > b.txt",
            "deps": ["a.txt", "other.txt"],
            "params": ["b.x"],
            "outs": ["b.txt"],
        },
        "c": {"cmd": "cat a.txt > c.txt", "deps": ["a.txt"], "outs": ["c.txt"]},
        "d": {
            "cmd": ["cat b.txt c.txt > d.txt", "echo '{\"score\": 0.9}' > m.json"],
            "deps": ["b.txt", "c.txt"],
            "outs": ["d.txt"],
            "metrics": ["m.json"],
        },
    },
}


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        past = path.stat().st_mtime - 60  # not "racily clean": the stat cache may trust it
        os.utime(path, (past, past))

    def pipeline(self) -> dict:
        """A copy of the standard pipeline, to modify and pass to ``config``."""
        return copy.deepcopy(PIPELINE)

    def config(self, data: dict) -> None:
        (self.root / "shipyard.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def run(self, **options) -> RunReport:
        with Project(self.root) as project:
            return run_pipeline(project, RunOptions(**options), console=Console(quiet=True))

    def statuses(self, report: RunReport) -> dict[str, str]:
        return {o.name: o.status for o in report.stages}

    def ran(self, report: RunReport) -> set[str]:
        return {o.name for o in report.stages if o.status == "ran"}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path)
    workspace.config(PIPELINE)
    workspace.write("in.txt", "input\n")
    workspace.write("other.txt", "other\n")
    workspace.write("params.yaml", "b: {x: 1, unrelated: 1}\n")
    return workspace

"""Stages written as decorated Python functions run through the same engine."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import shipyard
from shipyard.errors import PipelineError

SCRIPT = textwrap.dedent(
    """
    import json
    from pathlib import Path

    import shipyard
    from shipyard.pipeline.executors import Console


    @shipyard.stage(deps=["raw.txt"], outs=["clean.txt"], params=["clean.upper"])
    def clean(params):
        text = Path("raw.txt").read_text()
        Path("clean.txt").write_text(text.upper() if params["clean.upper"] else text)


    @shipyard.stage(deps=["clean.txt"], metrics=["metrics.json"])
    def measure():
        Path("metrics.json").write_text(json.dumps({"chars": len(Path("clean.txt").read_text())}))


    if __name__ == "__main__":
        report = shipyard.run_functions([measure, clean], console=Console(quiet=True))
        print(report.status, " ".join(f"{o.name}={o.status}" for o in report.stages))
    """
)


def run_script(root) -> str:
    result = subprocess.run(
        [sys.executable, "pipeline.py"], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_function_stages_are_ordered_cached_and_rerun_on_change(tmp_path):
    (tmp_path / "pipeline.py").write_text(SCRIPT)
    (tmp_path / "raw.txt").write_text("hello\n")
    (tmp_path / "params.yaml").write_text("clean: {upper: true}\n")

    assert run_script(tmp_path) == "succeeded clean=ran measure=ran"
    assert (tmp_path / "clean.txt").read_text() == "HELLO\n"
    assert run_script(tmp_path) == "up-to-date clean=up-to-date measure=up-to-date"

    (tmp_path / "params.yaml").write_text("clean: {upper: false}\n")
    assert run_script(tmp_path) == "succeeded clean=ran measure=ran"
    assert (tmp_path / "clean.txt").read_text() == "hello\n"
    (tmp_path / "pipeline.py").write_text(SCRIPT + "\n# an edit to the stage file\n")
    assert run_script(tmp_path) == "succeeded clean=ran measure=ran"


def test_an_undecorated_function_is_refused(tmp_path):
    def plain() -> None:
        pass

    with pytest.raises(PipelineError, match="not a stage"):
        shipyard.run_functions([plain], root=tmp_path)

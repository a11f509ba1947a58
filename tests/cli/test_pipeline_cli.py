"""`shipyard run` and friends, driven as a user drives them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SHIPYARD = [str(Path(sys.executable).with_name("shipyard"))]


def sh(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SHIPYARD, *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"shipyard {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


@pytest.mark.slow
def test_example_project_end_to_end(tmp_path):
    sh("init", "--example", "credit-risk", cwd=tmp_path)
    first = sh("run", "--json", cwd=tmp_path)
    report = json.loads(first.stdout)
    assert report["status"] == "succeeded"
    assert [s["status"] for s in report["stages"]] == ["ran", "ran", "ran"]
    assert "Everything is up to date" in sh("run", cwd=tmp_path).stderr

    params = tmp_path / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.3"))
    status = json.loads(sh("status", "--json", cwd=tmp_path).stdout)
    assert [s["status"] for s in status] == ["up-to-date", "would-run", "would-run"]
    second = json.loads(sh("run", "--json", cwd=tmp_path).stdout)
    assert [s["status"] for s in second["stages"]] == ["up-to-date", "ran", "ran"]

    diff = json.loads(sh("diff", report["run_id"], second["run_id"], "--json", cwd=tmp_path).stdout)
    assert [c["key"] for c in diff["params"]] == ["params.yaml:train.C"]
    shown = sh("runs", "show", second["run_id"], cwd=tmp_path).stdout
    assert "train.C = 0.3" in shown and "PEAK RSS" in shown


def test_failed_run_exits_1_and_shows_the_stage_output(tmp_path):
    (tmp_path / "shipyard.yaml").write_text(
        "project: p\nstages:\n  boom: {cmd: 'echo going down; exit 4', outs: [x]}\n"
    )
    result = sh("run", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "going down" in result.stderr and "exited with code 4" in result.stderr
    run_id = json.loads(sh("runs", "--json", cwd=tmp_path).stdout)[0]["id"]
    shown = sh("runs", "show", run_id, cwd=tmp_path).stdout
    assert "failed (exit 4)" in shown and "going down" in shown


def test_ctrl_c_stops_the_stage_and_records_the_run(tmp_path):
    (tmp_path / "shipyard.yaml").write_text(
        "project: p\nstages:\n"
        "  slow: {cmd: 'echo started; sleep 60 & echo $! > child.pid; wait', outs: [x]}\n"
    )
    proc = subprocess.Popen(
        [*SHIPYARD, "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "child.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    child = int((tmp_path / "child.pid").read_text())
    time.sleep(0.2)
    assert not _alive(child)  # the stage's own children were stopped too
    runs = json.loads(sh("runs", "--json", cwd=tmp_path).stdout)
    assert runs[0]["status"] == "interrupted"


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for an orphan reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_bad_stage_name_and_jobs_are_usage_errors(tmp_path):
    (tmp_path / "shipyard.yaml").write_text("project: p\nstages:\n  a: {cmd: 'true'}\n")
    result = sh("run", "--stage", "nope", cwd=tmp_path, check=False)
    assert result.returncode == 3 and "no stage named 'nope'" in result.stderr
    assert "stages in this project: a" in result.stderr
    assert sh("run", "--jobs", "0", cwd=tmp_path, check=False).returncode == 2


def test_data_add_push_pull_from_the_cli(tmp_path):
    remote = tmp_path / "remote"
    project = tmp_path / "p"
    project.mkdir()
    (project / "shipyard.yaml").write_text("project: p\n")
    (project / "data.csv").write_text("a\n1\n")
    sh("data", "add", "data.csv", cwd=project)
    assert sh("data", "push", "--remote", str(remote), cwd=project).returncode == 0
    (project / "data.csv").unlink()
    sh("data", "pull", "--remote", str(remote), cwd=project)
    assert (project / "data.csv").read_text() == "a\n1\n"

"""The rollout commands in-process: clear errors for bad input, and `status --watch`."""

from __future__ import annotations

import threading
import time

import pytest
from rollout_helpers import write_model

from shipyard.cli.main import main
from shipyard.project import Project
from shipyard.registry import open_registry


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    (tmp_path / "shipyard.yaml").write_text("project: cli\ngovernance: {require_gates: false}\n")
    with Project(tmp_path) as project:
        registry = open_registry(project)
        for version in (1, 2):
            registry.register("m", write_model(tmp_path / f"v{version}"), actor="dev")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["deploy", "m", "0"], 2, "VERSION must be a whole number >= 1"),
        (["deploy", "nope", "1"], 2, "nope"),
        (["deploy", "m", "1", "--steps", "50,10"], 2, "must increase"),
        (["deploy", "m", "1", "--step-duration", "soon"], 2, "duration"),
        (["rollout", "pause", "m"], 2, "no live rollout"),
    ],
)
def test_bad_rollout_commands_say_what_is_wrong(project_dir, capsys, argv, code, message):
    try:
        result = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        result = exc.code
    assert result == code
    assert message in capsys.readouterr().err


def test_a_second_live_rollout_is_a_conflict_and_watch_ends_with_the_rollout(project_dir, capsys):
    assert main(["deploy", "m", "1"]) == 0  # first deployment: all traffic at once
    assert main(["deploy", "m", "2", "--step-duration", "1h"]) == 0
    capsys.readouterr()
    assert main(["deploy", "m", "2"]) == 1
    assert "already has a live rollout" in capsys.readouterr().err

    threading.Timer(1.5, lambda: main(["rollout", "abort", "m"])).start()
    started = time.monotonic()
    assert main(["rollout", "status", "m", "--watch"]) == 0
    assert 1.0 < time.monotonic() - started < 15
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "running" in out and "aborted" in out

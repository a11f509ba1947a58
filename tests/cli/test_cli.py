"""CLI: exit codes and messages, as a user sees them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.cli.main import main


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_help_lists_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "init" in out and "config" in out and "exit codes:" in out


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from shipyard.cli.main import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = {'sqlalchemy', 'pydantic', 'pandas', 'numpy', 'fsspec', 'yaml', 'alembic'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["launch"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "invalid choice: 'launch'" in err
    assert "Try 'shipyard --help'" in err


def test_init_example_produces_a_valid_project(in_tmp, capsys):
    assert main(["init", "--example", "credit-risk"]) == 0
    assert (in_tmp / "data" / "raw.csv").stat().st_size > 100_000
    assert "/.shipyard/" in (in_tmp / ".gitignore").read_text()
    assert (in_tmp / ".shipyard").is_dir()
    assert main(["config", "validate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_init_twice_refuses_to_overwrite(in_tmp, capsys):
    assert main(["init"]) == 0
    assert main(["init"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["init", "--force"]) == 0


def test_init_keeps_an_existing_gitignore(in_tmp):
    (in_tmp / ".gitignore").write_text("*.log")
    main(["init"])
    assert (in_tmp / ".gitignore").read_text() == "*.log\n/.shipyard/\n"


def test_unknown_example_lists_the_available_ones(in_tmp, capsys):
    assert main(["init", "--example", "nope"]) == 2
    assert "available examples: credit-risk" in capsys.readouterr().err


def test_invalid_config_exits_2_listing_every_problem(in_tmp, capsys):
    (in_tmp / "shipyard.yaml").write_text("project: p\nstages: {a: {cmd: x, outz: []}}\nfoo: 1\n")
    assert main(["config", "validate"]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "stages.a.outz" in err and "- foo: unknown key" in err
    assert "Traceback" not in err


def test_invalid_config_as_json(in_tmp, capsys):
    (in_tmp / "shipyard.yaml").write_text("project: p\nbogus: 1\n")
    assert main(["config", "validate", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["problems"][0]["key"] == "bogus"


def test_outside_a_project_says_how_to_start(in_tmp, capsys):
    assert main(["runs"]) == 2
    assert "shipyard init" in capsys.readouterr().err


def test_runs_and_audit_on_a_fresh_project(in_tmp, capsys):
    main(["init"])
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["audit", "verify"]) == 0
    assert "intact" in capsys.readouterr().err


def test_internal_errors_have_no_traceback_unless_debug(in_tmp, capsys, monkeypatch):
    main(["init"])
    monkeypatch.setenv("SHIPYARD_DB", "sqlite:////proc/forbidden/x.db")
    code = main(["runs"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    assert main(["--debug", "runs"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_console_script_runs(in_tmp):
    exe = Path(sys.executable).with_name("shipyard")
    result = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0 and result.stdout.startswith("shipyard ")


DVC_YAML = """\
stages:
  split:
    cmd: python split.py data/all.csv data/parts
    deps: [split.py, data/all.csv]
    params: [split.ratio]
    outs: [data/parts]
  fit:
    cmd: python fit.py data/parts model.bin
    deps:
      - fit.py
      - data/parts
    params:
      - fit.lr
      - other.yaml:
          - seed
    outs:
      - model.bin
      - summary.txt:
          cache: false
    metrics:
      - scores.json:
          cache: false
"""


def test_init_from_dvc_keeps_the_stage_blocks(in_tmp):
    import yaml

    (in_tmp / "dvc.yaml").write_text(DVC_YAML)
    assert main(["init", "--from-dvc"]) == 0
    dvc = yaml.safe_load((in_tmp / "dvc.yaml").read_text())
    ours = yaml.safe_load((in_tmp / "shipyard.yaml").read_text())
    assert ours["stages"] == dvc["stages"]
    assert main(["config", "validate"]) == 0


def test_init_from_dvc_names_what_it_cannot_convert(in_tmp, capsys):
    (in_tmp / "dvc.yaml").write_text(
        "vars: [a.yaml]\nstages:\n  s:\n    foreach: [1, 2]\n    do: {cmd: echo}\n"
    )
    assert main(["init", "--from-dvc"]) == 2
    err = capsys.readouterr().err
    assert "stages.s.foreach" in err and "- vars:" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["promote", "m:1", "--expect", "abc"], "--expect: 'abc' is not a whole number"),
        (["runs", "--limit", "-5"], "--limit: must be at least 1"),
        (["serve", "--port", "99999"], "a port is 1 to 65535"),
        (["token", "create", "x", "--days", "-1"], "--days: must be 0 or more"),
    ],
)
def test_bad_option_values_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_config, parse_config
from shipyard.errors import ConfigError

DVC_STAGE = """
project: p
stages:
  featurize:
    cmd: python featurize.py data/prepared.bin data/features.npy
    deps:
      - featurize.py
      - data/prepared.bin
    params:
      - featurize.rowsize
    outs:
      - data/features.npy
      - cached.bin: {cache: false}
"""


def problems_of(text: str, tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "shipyard.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    return info.value.problems


def test_a_dvc_stage_block_is_valid_shipyard(tmp_path):
    path = tmp_path / "shipyard.yaml"
    path.write_text(DVC_STAGE)
    stage = load_config(path).stages["featurize"]
    assert stage.dep_paths() == ["featurize.py", "data/prepared.bin"]
    assert stage.out_paths() == ["data/features.npy", "cached.bin"]


def test_every_problem_is_reported_with_its_key_path(tmp_path):
    problems = problems_of(
        """
project: "bad name!"
stages:
  train: {cmd: python t.py, outz: [x]}
gates:
  metrics: {f1: "=> 0.8"}
deploy: {strategy: rainbow, steps: [50, 10]}
""",
        tmp_path,
    )
    keys = dict(problems)
    assert set(keys) == {
        "project",
        "stages.train.outz",
        "gates.metrics.f1",
        "deploy.strategy",
        "deploy.steps",
    }
    assert "valid keys here: cmd, deps" in keys["stages.train.outz"]
    assert "'canary', 'bluegreen', 'ab' or 'shadow'" in keys["deploy.strategy"]
    assert "'>= 0.8'" in keys["gates.metrics.f1"]


def test_unknown_top_level_key_lists_the_sections(tmp_path):
    ((key, message),) = problems_of("project: p\nstagess: {}\n", tmp_path)
    assert key == "stagess" and "stages" in message and "governance" in message


def test_yaml_syntax_error_points_at_the_line(tmp_path):
    path = tmp_path / "shipyard.yaml"
    path.write_text("project: p\nstages:\n  a: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(path)


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "shipyard.yaml"
    path.write_text("project: p\nproject: q\n")
    with pytest.raises(ConfigError, match="duplicate key 'project'"):
        load_config(path)


def test_python_tags_are_not_executed(tmp_path):
    path = tmp_path / "shipyard.yaml"
    path.write_text("project: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside", "a/../../b"])
def test_paths_must_stay_in_the_project(bad):
    with pytest.raises(ConfigError, match=r"absolute|leaves the project"):
        parse_config({"project": "p", "stages": {"s": {"cmd": "x", "deps": [bad]}}})


def test_cycles_and_shared_outputs_name_the_stages():
    with pytest.raises(ConfigError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        parse_config(
            {
                "project": "p",
                "stages": {
                    "a": {"cmd": "x", "deps": ["y"], "outs": ["x"]},
                    "b": {"cmd": "x", "deps": ["x"], "outs": ["y"]},
                },
            }
        )
    with pytest.raises(ConfigError, match="'a' and 'b' both write 'out'"):
        parse_config(
            {
                "project": "p",
                "stages": {"a": {"cmd": "x", "outs": ["out"]}, "b": {"cmd": "y", "outs": ["out"]}},
            }
        )


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(["a list"])


def test_fairness_metric_names_are_checked():
    with pytest.raises(ConfigError, match="unknown fairness metric 'parity'"):
        parse_config({"project": "p", "gates": {"fairness": {"sensitive": ["g"], "parity": 0.1}}})

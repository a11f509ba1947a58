"""``shipyard init``: scaffold a project, optionally from a bundled example."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from shipyard.config import CONFIG_FILE, load_config
from shipyard.errors import ConfigError, ShipyardError, UsageError
from shipyard.project import STATE_DIR

__all__ = ["EXAMPLES", "InitResult", "init_project"]

EXAMPLES = ("credit-risk",)
_GITIGNORE_LINES = ["/.shipyard/"]

_MINIMAL = """\
# Shipyard project. Stages form a DAG: order comes from deps and outs.
# Docs: `shipyard --help`; validate with `shipyard config validate`.
project: {name}

stages: {{}}
  # train:
  #   cmd: python train.py
  #   deps: [train.py, data/train.csv]
  #   params: [train.C]
  #   outs: [model]
  #   metrics: [metrics.json]
"""


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: list[str] = field(default_factory=list)
    example: str | None = None


def _project_name(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.absolute().name).strip("-.") or "project"
    return name[:100]


def _ensure_gitignore(root: Path) -> bool:
    path = root / ".gitignore"
    lines = path.read_text().splitlines() if path.exists() else []
    missing = [line for line in _GITIGNORE_LINES if line not in lines]
    if missing:
        with path.open("a") as handle:
            if lines and lines[-1] != "":
                handle.write("\n")
            handle.write("\n".join(missing) + "\n")
    return bool(missing)


def _copy_example(name: str, root: Path, force: bool) -> list[str]:
    source = resources.files("shipyard.scaffold") / "examples" / name
    created = []
    with resources.as_file(source) as folder:
        for item in sorted(Path(folder).rglob("*")):
            if item.is_dir() or "__pycache__" in item.parts:
                continue
            rel = item.relative_to(folder)
            target = root / rel
            if target.exists() and not force:
                raise UsageError(
                    f"'{target}' already exists", hint="use --force to overwrite example files"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, target)
            created.append(rel.as_posix())
    return created


def _make_example_data(root: Path) -> str:
    result = subprocess.run(
        [sys.executable, "src/make_data.py", "data/raw.csv"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ShipyardError(
            f"could not generate the example data: {result.stderr.strip()[-500:]}",
            hint="check that numpy and pandas are installed in this environment",
        )
    return "data/raw.csv"


_DVC_STAGE_KEYS = {
    "cmd",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "wdir",
    "desc",
    "frozen",
    "always_changed",
}


def _from_dvc(root: Path) -> str:
    """shipyard.yaml text holding the stages of ``root/dvc.yaml``, unchanged."""
    import yaml

    from shipyard.config import read_yaml

    dvc = read_yaml(root / "dvc.yaml")
    if not isinstance(dvc, dict) or not isinstance(dvc.get("stages"), dict):
        raise ConfigError(f"{root / 'dvc.yaml'} has no `stages:` mapping", path="dvc.yaml")
    problems = [
        (f"stages.{name}.{key}", "not supported by Shipyard; expand it into plain stages")
        for name, stage in dvc["stages"].items()
        for key in (stage or {})
        if key not in _DVC_STAGE_KEYS
    ]
    problems += [(key, "not supported; inline the values") for key in dvc if key != "stages"]
    if problems:
        raise ConfigError("dvc.yaml uses features Shipyard cannot convert:", problems=problems)
    body = {"project": _project_name(root), "stages": dvc["stages"]}
    header = "# Converted from dvc.yaml by `shipyard init --from-dvc`.\n"
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def init_project(
    root: str | Path = ".",
    *,
    example: str | None = None,
    from_dvc: bool = False,
    force: bool = False,
) -> InitResult:
    """Create ``shipyard.yaml``, ``.shipyard/`` and a ``.gitignore`` entry in ``root``.

    With ``example``, write a complete example project instead of the minimal file;
    with ``from_dvc``, take the stages from the folder's ``dvc.yaml``. Refuses to
    overwrite an existing ``shipyard.yaml`` unless ``force``.
    """
    root = Path(root)
    if example and from_dvc:
        raise UsageError("--example and --from-dvc cannot be combined")
    if example is not None and example not in EXAMPLES:
        raise UsageError(
            f"unknown example {example!r}", hint=f"available examples: {', '.join(EXAMPLES)}"
        )
    config = root / CONFIG_FILE
    if config.exists() and not force:
        raise UsageError(
            f"'{config}' already exists", hint="edit it, or pass --force to replace it"
        )
    root.mkdir(parents=True, exist_ok=True)
    created: list[str] = []
    if example:
        created += _copy_example(example, root, force)
        created.append(_make_example_data(root))
    else:
        text = _from_dvc(root) if from_dvc else _MINIMAL.format(name=_project_name(root))
        config.write_text(text)
        created.append(CONFIG_FILE)
    (root / STATE_DIR).mkdir(exist_ok=True)
    created.append(STATE_DIR + "/")
    if _ensure_gitignore(root):
        created.append(".gitignore")
    try:
        load_config(config)
    except ConfigError as exc:
        if from_dvc:  # the user's dvc.yaml: say what to fix in the converted file
            raise
        raise ShipyardError(f"internal error: the scaffolded config is invalid: {exc}") from exc
    return InitResult(root, created, example)

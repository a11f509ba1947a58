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


def init_project(
    root: str | Path = ".", *, example: str | None = None, force: bool = False
) -> InitResult:
    """Create ``shipyard.yaml``, ``.shipyard/`` and a ``.gitignore`` entry in ``root``.

    With ``example``, write a complete example project instead of the minimal file.
    Refuses to overwrite an existing ``shipyard.yaml`` unless ``force``.
    """
    root = Path(root)
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
        config.write_text(_MINIMAL.format(name=_project_name(root)))
        created.append(CONFIG_FILE)
    (root / STATE_DIR).mkdir(exist_ok=True)
    created.append(STATE_DIR + "/")
    if _ensure_gitignore(root):
        created.append(".gitignore")
    try:
        load_config(config)
    except ConfigError as exc:  # a template bug, never the user's fault
        raise ShipyardError(f"internal error: the scaffolded config is invalid: {exc}") from exc
    return InitResult(root, created, example)

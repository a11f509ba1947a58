"""What a run records about where it came from: git state and the Python environment."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["environment", "git_state"]


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding ``root``; (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip())


def environment() -> dict[str, Any]:
    """Python version, platform and installed distributions (name -> version)."""
    packages = {
        (dist.metadata["Name"] or "").lower(): dist.version for dist in metadata.distributions()
    }
    packages.pop("", None)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": dict(sorted(packages.items())),
    }

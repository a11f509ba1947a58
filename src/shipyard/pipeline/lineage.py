"""What a run records about where it came from: git state and the Python environment."""

from __future__ import annotations

import os
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


def environment(cache_dir: Path | None = None) -> dict[str, Any]:
    """Python version, platform and installed distributions (name -> version).

    Listing distributions reads every package's metadata (a few hundred ms); with
    ``cache_dir`` the result is reused until a site-packages folder changes (an install
    or removal touches its mtime).
    """
    if cache_dir is None:
        return _environment()
    import json
    import site

    folders = [p for p in {*site.getsitepackages(), site.getusersitepackages()} if Path(p).is_dir()]
    key = "|".join(f"{p}:{Path(p).stat().st_mtime_ns}" for p in sorted(folders)) + sys.prefix
    cache = cache_dir / "environment.json"
    try:
        cached = json.loads(cache.read_text())
        if cached["key"] == key:
            return dict(cached["environment"])
    except (OSError, ValueError, KeyError):
        pass
    result = _environment()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".environment.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "environment": result}))
    os.replace(tmp, cache)
    return result


def _environment() -> dict[str, Any]:
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

"""``shipyard ci init``: choose the provider's files and write them, never over a file
that is already there unless told to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shipyard.ci import aws, azure, github, gitlab, jenkins
from shipyard.ci.facts import Facts
from shipyard.errors import UsageError

__all__ = ["PROVIDERS", "render_pipeline", "write_pipeline"]

_BUILDERS: dict[str, Callable[[Facts], dict[str, str]]] = {
    "github": github.files,
    "gitlab": gitlab.files,
    "jenkins": jenkins.files,
    "azure": azure.files,
    "aws": aws.files,
}
PROVIDERS = tuple(_BUILDERS)


def render_pipeline(provider: str, facts: Facts) -> dict[str, str]:
    """The files for ``provider``: relative path -> text."""
    builder = _BUILDERS.get(provider)
    if builder is None:
        raise UsageError(f"unknown CI provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")
    return builder(facts)


def write_pipeline(provider: str, facts: Facts, root: Path, *, force: bool = False) -> list[Path]:
    """Write the provider's files under ``root``; returns their paths.

    Nothing is written when any of them exists and ``force`` is false, so a refused
    run leaves no half-written set behind.
    """
    files = {root / relative: text for relative, text in render_pipeline(provider, facts).items()}
    existing = [path for path in files if path.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise UsageError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; nothing was written",
            hint="use --force to overwrite, or --output DIR to write elsewhere",
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)

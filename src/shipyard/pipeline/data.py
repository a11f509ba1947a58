"""Data versioning: ``data add``, ``data push``, ``data pull`` and ``checkout``.

``data add PATH`` stores a file or folder in the artifact store and writes a small
pointer file ``PATH.shipyard`` for git, plus a ``.gitignore`` entry so the data itself
stays out of git. ``push``/``pull`` copy objects between the project's store and a
remote store (any fsspec URL). ``checkout RUN`` puts back the data and outputs a
recorded run used, so it can be reproduced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import StoreError, UsageError
from shipyard.pipeline.lockfile import LockFile
from shipyard.pipeline.statcache import StatCache
from shipyard.project import STATE_DIR, Project
from shipyard.store.artifacts import ArtifactStore, safe_join

__all__ = [
    "POINTER_SUFFIX",
    "CheckoutReport",
    "DataRef",
    "TransferReport",
    "add_data",
    "checkout_run",
    "pull",
    "push",
]

POINTER_SUFFIX = ".shipyard"
_SKIP_DIRS = {".git", STATE_DIR, ".venv", "node_modules", "__pycache__"}


@dataclass(frozen=True)
class DataRef:
    path: str
    oid: str
    size: int
    files: int
    pointer: str


@dataclass
class TransferReport:
    considered: int = 0
    transferred: int = 0
    missing: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)


@dataclass
class CheckoutReport:
    run_id: str
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)
    git_commit: str | None = None


def _relative(project: Project, path: str | os.PathLike[str]) -> str:
    """``path`` as a project-relative POSIX path; refuse anything outside the project."""
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(project.root).as_posix()
    except ValueError:
        raise UsageError(
            f"'{path}' is outside the project at {project.root}",
            hint="move the data into the project folder first",
        ) from None
    safe_join(project.root, rel)  # also refuses symlinks that lead out of the project
    return rel


def _gitignore(project: Project, rel: str) -> None:
    folder, name = os.path.split(rel)
    ignore = project.root / folder / ".gitignore"
    entry = f"/{name}"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    if entry not in lines:
        with ignore.open("a") as handle:
            if lines and lines[-1]:
                handle.write("\n")
            handle.write(entry + "\n")


def add_data(project: Project, path: str | os.PathLike[str], *, actor: str) -> DataRef:
    """Version a file or folder: store it, write its pointer, keep it out of git."""
    rel = _relative(project, path)
    target = project.root / rel
    for name, stage in project.spec.stages.items():
        if any(rel == out or rel.startswith(out + "/") for out in stage.out_paths):
            raise UsageError(
                f"'{rel}' is an output of stage '{name}'; `shipyard run` versions it already",
                hint="add the stage's inputs instead",
            )
    if not target.exists():
        raise UsageError(f"'{path}' does not exist", hint="check the path")
    stat = StatCache(project.root / STATE_DIR / "cache" / "stat.db")
    try:
        if target.is_dir():
            _, entries = stat.tree(target)
            ref = project.artifacts.put_dir(target, entries)
        else:
            ref = project.artifacts.put_file(target, stat.file_oid(target))
    finally:
        stat.close()
    pointer = rel + POINTER_SUFFIX
    body = {"path": os.path.basename(rel), "oid": ref.oid, "size": ref.size, "files": ref.files}
    (project.root / pointer).write_text(
        "# Shipyard data pointer: commit this file; the data lives in the artifact store.\n"
        + json.dumps(body, indent=2)
        + "\n"
    )
    _gitignore(project, rel)
    with project.metadata.transaction() as conn:
        project.metadata.record_artifact(ref.oid, ref.size, ref.files, conn=conn)
        project.metadata.append_event(actor, "data.add", rel, body, conn=conn)
    return DataRef(rel, ref.oid, ref.size, ref.files, pointer)


def _pointers(root: Path) -> Iterator[tuple[str, str]]:
    """(data path, oid) of every pointer file in the project."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(POINTER_SUFFIX) and name != POINTER_SUFFIX:
                pointer = Path(folder, name)
                try:
                    text = "\n".join(
                        line
                        for line in pointer.read_text().splitlines()
                        if not line.startswith("#")
                    )
                    oid = json.loads(text)["oid"]
                except (OSError, ValueError, KeyError) as exc:
                    raise StoreError(f"pointer file '{pointer}' is malformed: {exc}") from None
                rel = pointer.relative_to(root).as_posix().removesuffix(POINTER_SUFFIX)
                yield rel, oid


def _tracked(project: Project) -> dict[str, str]:
    """Every path the project versions now: pointer files and the lock file's outputs."""
    paths = dict(_pointers(project.root))
    for entry in LockFile(project.root).stages.values():
        paths.update({p: oid for p, oid in entry.outs.items() if oid})
    return paths


def _remote(project: Project, remote: str | None) -> ArtifactStore:
    from shipyard.store import open_artifacts

    url = remote or project.remote_url
    if not url:
        raise UsageError(
            "no remote store configured",
            hint="pass --remote URL (e.g. s3://bucket/prefix) or set `store: {remote: URL}` "
            "in shipyard.yaml",
        )
    return open_artifacts(url)


def push(project: Project, remote: str | None = None) -> TransferReport:
    """Copy every object the project versions to the remote store."""
    target = _remote(project, remote)
    report = TransferReport()
    for path, oid in sorted(_tracked(project).items()):
        report.considered += 1
        if not project.artifacts.exists(oid):
            report.missing.append(path)
            continue
        report.transferred += project.artifacts.copy_to(target, oid)
    return report


def pull(project: Project, remote: str | None = None) -> TransferReport:
    """Fetch every versioned object from the remote store and restore missing data."""
    source = _remote(project, remote)
    report = TransferReport()
    for path, oid in sorted(_tracked(project).items()):
        report.considered += 1
        if not project.artifacts.exists(oid):
            if not source.exists(oid):
                report.missing.append(path)
                continue
            report.transferred += source.copy_to(project.artifacts, oid)
        if _restore_if_different(project, path, oid):
            report.restored.append(path)
    return report


def _restore_if_different(project: Project, rel: str, oid: str) -> bool:
    stat = StatCache(project.root / STATE_DIR / "cache" / "stat.db")
    try:
        current = stat.oid(project.root / rel)
    finally:
        stat.close()
    if current == oid:
        return False
    project.artifacts.get(oid, safe_join(project.root, rel))
    return True


def checkout_run(project: Project, run_id: str) -> CheckoutReport:
    """Restore the data and outputs a recorded run read and wrote.

    Paths whose content is not in the artifact store (usually code, which git versions)
    are listed with the run's commit so they can be restored with git.
    """
    from shipyard.pipeline.history import run_paths

    run = project.metadata.get_run(run_id)
    report = CheckoutReport(run.id, git_commit=run.git_commit)
    for rel, oid in sorted(run_paths(project.metadata, run).items()):
        if oid is None or not project.artifacts.exists(oid):
            report.not_stored.append(rel)
        elif _restore_if_different(project, rel, oid):
            report.restored.append(rel)
        else:
            report.unchanged.append(rel)
    return report

"""Where the candidate and its data came from, for the report.

A registered version carries its lineage. For a model file or folder, the content id
is computed and looked up among the outputs of recorded pipeline stages (newest
first), as the registry does at registration: the run that wrote exactly these bytes
gives the commit, params and input data hashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.pipeline.history import run_lineage, run_that_wrote
from shipyard.store.hashing import hash_file, hash_tree

__all__ = ["content_id", "data_lineage", "model_lineage"]


def content_id(path: Path) -> str:
    """The artifact store's id for a file or folder."""
    return hash_tree(path)[0] if path.is_dir() else hash_file(path)


def model_lineage(project: Any, path: Path, version: Any | None) -> dict[str, Any]:
    """Lineage of the candidate: the version's record, or the run that wrote ``path``."""
    if version is not None:
        return {"version": version.ref, "model_oid": version.oid, **(version.lineage or {})}
    oid = content_id(path)
    run_id = run_that_wrote(project.metadata, oid)
    facts = run_lineage(project.metadata, run_id) if run_id else {}
    return {"model_oid": oid, **facts}


def data_lineage(
    root: Path, paths: dict[str, str | None], frames: dict[str, Any]
) -> dict[str, Any]:
    """Path, content hash and shape of the train and test data."""
    out: dict[str, Any] = {}
    for name, rel in paths.items():
        frame = frames.get(name)
        if rel is None or frame is None:
            continue
        path = root / rel
        out[name] = {
            "path": rel,
            "hash": content_id(path) if path.exists() else None,
            "rows": len(frame),
            "columns": len(frame.columns),
        }
    return out

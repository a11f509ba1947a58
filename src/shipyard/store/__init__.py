"""Adapters for state: the metadata store (SQLAlchemy) and the artifact store (fsspec).

``open_store`` picks the backend from the URL, so services never construct one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.store.artifacts import ArtifactStore
    from shipyard.store.metadata import MetadataStore

__all__ = ["open_artifacts", "open_metadata"]


def open_metadata(url: str, **kwargs: Any) -> MetadataStore:
    """Open the metadata store at a SQLAlchemy URL (sqlite:///… or postgresql://…)."""
    from shipyard.store.metadata import MetadataStore

    return MetadataStore(url, **kwargs)


def open_artifacts(url: str, **kwargs: Any) -> ArtifactStore:
    """Open the artifact store at a local path or any fsspec URL (s3://bucket/prefix…)."""
    from shipyard.store.artifacts import ArtifactStore

    return ArtifactStore(url, **kwargs)

"""A Shipyard project on disk: its root, its config and the stores it writes to.

Store locations come, in order, from the environment (``SHIPYARD_DB``,
``SHIPYARD_ARTIFACTS``), then the ``store:`` section of ``shipyard.yaml``, then the
embedded defaults under ``.shipyard/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.config import ProjectConfig
    from shipyard.pipeline.spec import PipelineSpec
    from shipyard.store.artifacts import ArtifactStore
    from shipyard.store.metadata import MetadataStore

__all__ = ["STATE_DIR", "Project", "find_root", "open_project"]

STATE_DIR = ".shipyard"
CONFIG_FILE = "shipyard.yaml"


def find_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds a ``shipyard.yaml``."""
    here = Path(start or os.getcwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} in {here} or any folder above it",
        hint="run `shipyard init` in your repository's root, or cd into a project",
    )


def _resolve_local(root: Path, location: str) -> str:
    """Relative local paths in config are relative to the project root."""
    if "://" in location:
        return location
    return str((root / location).absolute())


@dataclass
class Project:
    """An opened project. The full config, the stores and the pipeline spec are loaded
    on first use (a no-op ``shipyard run`` needs only the cached spec) and the stores
    are closed by ``close``."""

    root: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @cached_property
    def config(self) -> ProjectConfig:
        from shipyard.config import load_config

        return load_config(self.root / CONFIG_FILE)

    @cached_property
    def spec(self) -> PipelineSpec:
        from shipyard.pipeline.spec import load_spec

        return load_spec(self.root)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def name(self) -> str:
        return self.spec.project

    @property
    def db_url(self) -> str:
        configured = self.environ.get("SHIPYARD_DB") or self.spec.store.get("db")
        if configured:
            return configured
        return f"sqlite:///{self.state_dir / 'shipyard.db'}"

    @property
    def artifacts_url(self) -> str:
        configured = self.environ.get("SHIPYARD_ARTIFACTS") or self.spec.store.get("artifacts")
        return _resolve_local(self.root, configured or f"{STATE_DIR}/artifacts")

    @property
    def actor(self) -> str:
        """Who is acting, for the audit log: $SHIPYARD_USER, else the login name."""
        import getpass

        return self.environ.get("SHIPYARD_USER") or getpass.getuser()

    @property
    def remote_url(self) -> str | None:
        remote = self.environ.get("SHIPYARD_REMOTE") or self.spec.store.get("remote")
        return _resolve_local(self.root, remote) if remote else None

    @cached_property
    def metadata(self) -> MetadataStore:
        from shipyard.store import open_metadata

        return open_metadata(self.db_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from shipyard.store import open_artifacts

        return open_artifacts(self.artifacts_url)

    def close(self) -> None:
        if "metadata" in self.__dict__:
            self.metadata.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_project(start: str | os.PathLike[str] | None = None) -> Project:
    """Find and validate the project containing ``start`` (default: cwd)."""
    project = Project(find_root(start))
    project.spec  # noqa: B018 - validates shipyard.yaml now, through the spec cache
    return project

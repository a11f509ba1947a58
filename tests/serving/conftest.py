from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shipyard.registry.service import Registry
from shipyard.serving.control import ControlPlane
from shipyard.serving.gateway import Gateway, Settings
from shipyard.store import open_artifacts, open_metadata


class Served:
    """A registry with two versions of model 'm' and a started gateway over it."""

    def __init__(self, root: Path, db_url: str, make_model, **settings) -> None:
        self.metadata = open_metadata(db_url)
        self.registry = Registry(self.metadata, open_artifacts(str(root / "artifacts")))
        for seed in (1, 2, 3) if make_model else ():
            self.registry.register("m", make_model(root / f"model{seed}", seed=seed), actor="dev")
        self.control = ControlPlane(self.metadata)
        settings.setdefault("allowed_hosts", ("testserver", "127.0.0.1", "localhost"))
        settings.setdefault("log_dir", root / "log")
        settings.setdefault("poll_interval", 0.05)
        self.gateway = Gateway(self.registry, self.control, Settings(**settings), root / "cache")
        self.gateway.start()
        from shipyard.serving.app import create_app

        self.app = create_app(self.gateway)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    def close(self) -> None:
        self.gateway.stop()
        self.metadata.close()


@pytest.fixture
def make_served(make_model):
    """Build gateways over a given root and database; all are closed after the test."""
    made: list[Served] = []

    def make(root: Path, db_url: str, register: bool = True, **settings) -> Served:
        instance = Served(root, db_url, make_model if register else None, **settings)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()


@pytest.fixture
def served(tmp_path, make_served):
    return make_served(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")

"""The serving gateway: an ASGI app that routes, predicts, logs and exports metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.serving.gateway import Gateway

__all__ = ["gateway_for"]


def gateway_for(project: Project, **settings: Any) -> Gateway:
    """A gateway over the project's stores; its prediction log goes to
    ``.shipyard/logs/serving`` unless ``log_dir`` says otherwise."""
    from shipyard.registry import open_registry
    from shipyard.serving.control import ControlPlane
    from shipyard.serving.gateway import Gateway, Settings

    settings.setdefault("log_dir", project.state_dir / "logs" / "serving")
    gateway = Gateway(
        open_registry(project),
        ControlPlane(project.metadata),
        Settings(**settings),
        project.state_dir / "cache" / "models",
    )
    gateway.project = project
    return gateway

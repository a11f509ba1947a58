"""``shipyard ui``: the dashboard alone, against the project's store, serving no models."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import port

NAMES = ("ui",)


def register(sub: Any) -> None:
    ui = sub.add_parser(
        "ui",
        help="open the dashboard (models, runs, deployments, monitoring, alerts, audit)",
        description="Serve the dashboard against this project's store without serving "
        "models. It binds 127.0.0.1 unless --host says otherwise, and refuses a "
        "non-loopback address until users (and so tokens) exist.",
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=port, default=8090)
    ui.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="extra Host header values to accept (DNS-rebinding guard)",
    )
    ui.add_argument("--log-level", default="warning")
    ui.set_defaults(handler=run_ui)


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def build_app(project: Any, allowed_hosts: tuple[str, ...]) -> Any:
    """The Starlette app: the dashboard's routes, and ``/`` sending people to it."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    from shipyard.dashboard import Dashboard

    dashboard = Dashboard(project.metadata, allowed_hosts=allowed_hosts, project=project)

    async def home(request: Any) -> RedirectResponse:
        return RedirectResponse("/ui/models", 303)

    return Starlette(routes=[Route("/", home, methods=["GET"]), *dashboard.routes()])


def run_ui(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.errors import UsageError
    from shipyard.project import open_project
    from shipyard.registry.users import UserDirectory

    try:
        import uvicorn
    except ModuleNotFoundError:
        raise UsageError(
            "the dashboard needs the serving extra", hint="pip install 'shipyard-ml[serve]'"
        ) from None
    project = open_project()
    if not _loopback(args.host) and not UserDirectory(project.metadata).list():
        raise UsageError(
            f"refusing to serve the dashboard on {args.host} with no users: anyone could "
            "steer rollouts",
            hint="add users and tokens first (shipyard users add …), or bind 127.0.0.1",
        )
    hosts = ("127.0.0.1", "localhost", "[::1]", "::1", args.host, *args.allow_host)
    info(f"dashboard for {project.name} on http://{args.host}:{args.port}/ui")
    uvicorn.run(
        build_app(project, hosts),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    project.close()
    return 0

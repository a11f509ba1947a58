"""``shipyard serve`` and ``shipyard routing``: run the gateway, change its routing."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import port, positive_int

NAMES = ("serve", "routing", "flags")


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve registered models over HTTP (routing, metrics, prediction log)",
        description="Start the gateway. It binds 127.0.0.1 unless --host says otherwise, "
        "and refuses a non-loopback address until users (and so tokens) exist.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port, default=8080)
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="extra Host header values to accept (DNS-rebinding guard)",
    )
    serve.add_argument(
        "--max-rows", type=positive_int, default=10_000, help="largest batch accepted"
    )
    serve.add_argument(
        "--rate-limit",
        type=float,
        default=0.0,
        metavar="RPS",
        help="requests per second per client (0: no limit)",
    )
    serve.add_argument(
        "--micro-batch-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="group concurrent small requests for up to MS milliseconds",
    )
    serve.add_argument(
        "--no-admin",
        action="store_true",
        help="serve predictions only: no admin API (allows a public bind)",
    )
    serve.add_argument(
        "--no-controller",
        action="store_true",
        help="do not run the rollout controller in this process (run it elsewhere with "
        "`shipyard rollout run`)",
    )
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(handler=run_serve)

    routing = sub.add_parser("routing", help="show or set a model's traffic split")
    commands = routing.add_subparsers(title="commands", metavar="COMMAND")
    show = commands.add_parser("show", help="print a model's routing table")
    show.add_argument("model")
    show.set_defaults(handler=run_show)
    set_ = commands.add_parser(
        "set",
        help="split traffic: --split 1=90,2=10 [--sticky header:x-user-id] [--shadow 3]",
    )
    set_.add_argument("model")
    set_.add_argument("--split", required=True, metavar="V=PCT,...")
    set_.add_argument("--sticky", metavar="ATTRIBUTE", help="e.g. header:x-user-id or field:user")
    set_.add_argument("--shadow", action="append", type=int, default=[], metavar="VERSION")
    set_.add_argument("--flag", help="a flag whose variant value picks the version")
    set_.add_argument("--expect", type=int, metavar="REVISION", help="compare-and-set")
    set_.set_defaults(handler=run_set)

    flags = sub.add_parser("flags", help="show or set feature flags")
    fcmds = flags.add_subparsers(title="commands", metavar="COMMAND")
    fshow = fcmds.add_parser("show", help="print a flag")
    fshow.add_argument("name")
    fshow.set_defaults(handler=run_flag_show)
    fset = fcmds.add_parser("set", help="set a flag from a JSON file (variants, default, rules)")
    fset.add_argument("name")
    fset.add_argument("file", metavar="FLAG.json")
    fset.set_defaults(handler=run_flag_set)


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def run_serve(args: argparse.Namespace) -> int:
    import threading

    import uvicorn

    from shipyard.cli.output import info
    from shipyard.errors import UsageError
    from shipyard.project import open_project
    from shipyard.registry.users import UserDirectory
    from shipyard.serving import gateway_for
    from shipyard.serving.app import create_app

    project = open_project()
    open_admin = not args.no_admin and not UserDirectory(project.metadata).list()
    if not _loopback(args.host) and open_admin:
        raise UsageError(
            f"refusing to serve on {args.host} with no users: the admin API would be open",
            hint="add users and tokens first (shipyard users add …), pass --no-admin, or "
            "bind 127.0.0.1",
        )
    hosts = ("127.0.0.1", "localhost", "[::1]", "::1", args.host, *args.allow_host)
    gateway = gateway_for(
        project,
        allowed_hosts=hosts,
        max_rows=args.max_rows,
        rate_limit=args.rate_limit,
        micro_batch_ms=args.micro_batch_ms,
    )
    info(f"serving {project.name} on http://{args.host}:{args.port} (metrics at /metrics)")
    stop = threading.Event()
    if not args.no_controller:
        from shipyard.rollout.controller import Controller

        local = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        controller = Controller(
            project,
            log_dir=gateway.settings.log_dir,
            gateway_url=f"http://{local}:{args.port}",
        )
        threading.Thread(
            target=controller.run, args=(stop,), name="rollout-controller", daemon=True
        ).start()
    try:
        uvicorn.run(
            create_app(gateway),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        stop.set()
        project.close()
    return 0


def run_show(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json
    from shipyard.project import open_project
    from shipyard.serving.control import ControlPlane

    with open_project() as project:
        table, revision = ControlPlane(project.metadata).get_table(args.model)
    emit_json({**table.to_json(), "revision": revision})
    return 0


def _split(text: str) -> list[tuple[int, float]]:
    from shipyard.errors import UsageError

    arms = []
    for part in text.split(","):
        version, _, weight = part.partition("=")
        try:
            arms.append((int(version), float(weight)))
        except ValueError:
            raise UsageError(
                f"--split {text!r}: each part must look like VERSION=PERCENT"
            ) from None
    return arms


def run_set(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.core.routing import Arm, RoutingTable
    from shipyard.project import open_project
    from shipyard.registry import open_registry
    from shipyard.serving.control import ControlPlane

    table = RoutingTable(
        model=args.model,
        arms=tuple(Arm(v, w) for v, w in _split(args.split)),
        sticky=args.sticky,
        shadows=tuple(args.shadow),
        flag=args.flag,
    )
    with open_project() as project:
        registry = open_registry(project)
        registry.users.require(project.actor, "deploy")
        for version in table.versions():
            registry.get(f"{args.model}:{version}")  # every version must exist
        revision = ControlPlane(project.metadata).set_table(
            table, actor=project.actor, expected=args.expect
        )
    info(
        f"routing for {args.model} is now revision {revision}; gateways pick it up within a second"
    )
    return 0


def run_flag_show(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json
    from shipyard.project import open_project
    from shipyard.serving.control import ControlPlane

    with open_project() as project:
        flag, revision = ControlPlane(project.metadata).get_flag(args.name)
    emit_json({**flag.to_json(), "revision": revision})
    return 0


def run_flag_set(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from shipyard.cli.output import info
    from shipyard.core.flags import flag_from_json
    from shipyard.errors import UsageError
    from shipyard.project import open_project
    from shipyard.registry.users import UserDirectory
    from shipyard.serving.control import ControlPlane

    try:
        flag = flag_from_json({**json.loads(Path(args.file).read_text()), "name": args.name})
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot use {args.file}: {exc}") from None
    with open_project() as project:
        UserDirectory(project.metadata).require(project.actor, "deploy")
        revision = ControlPlane(project.metadata).set_flag(flag, actor=project.actor)
    info(f"flag {args.name} is now revision {revision}")
    return 0

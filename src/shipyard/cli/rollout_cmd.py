"""``shipyard deploy`` and ``shipyard rollout``: start, watch, steer and run rollouts."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

NAMES = ("deploy", "rollout")

STRATEGIES = ("canary", "bluegreen", "ab", "shadow")


def register(sub: Any) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="roll a version out: canary, blue-green, A/B or shadow",
        description="Start a rollout of MODEL VERSION with the strategy and settings of "
        "`deploy:` in shipyard.yaml (options override them). The rollout controller "
        "(inside `shipyard serve`, or `shipyard rollout run`) then promotes it step by "
        "step or rolls it back by itself.",
    )
    deploy.add_argument("model", metavar="MODEL")
    deploy.add_argument("version", metavar="VERSION", type=_version)
    deploy.add_argument("--strategy", choices=STRATEGIES)
    deploy.add_argument("--steps", metavar="PCT,PCT,...", help="canary steps, e.g. 5,25,50,100")
    deploy.add_argument("--step-duration", metavar="DURATION", help="e.g. 30s, 5m")
    deploy.add_argument("--sticky", metavar="ATTRIBUTE", help="e.g. header:x-user-id")
    deploy.add_argument("--json", action="store_true", help="print the rollout as JSON")
    deploy.set_defaults(handler=run_deploy)

    rollout = sub.add_parser("rollout", help="watch and steer rollouts; run the controller")
    commands = rollout.add_subparsers(title="commands", metavar="COMMAND")
    status = commands.add_parser(
        "status", help="live rollouts (or MODEL's latest): step, shares, last decision"
    )
    status.add_argument("model", nargs="?", metavar="MODEL")
    status.add_argument("--json", action="store_true", help="print as JSON")
    status.add_argument(
        "--watch",
        action="store_true",
        help="refresh every second until no rollout is live (Ctrl-C to stop)",
    )
    status.set_defaults(handler=run_status)
    history = commands.add_parser("list", help="recent rollouts, newest first")
    history.add_argument("model", nargs="?", metavar="MODEL")
    history.add_argument("--json", action="store_true", help="print as JSON")
    history.set_defaults(handler=run_list)
    for name, text in (
        ("pause", "freeze the rollout at its current step"),
        ("resume", "continue a paused rollout (its step's window restarts)"),
        ("promote", "skip the remaining analysis: the candidate takes production now"),
        ("abort", "stop the rollout: the stable version takes all traffic"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("model", metavar="MODEL")
        command.add_argument("--json", action="store_true", help="print as JSON")
        command.set_defaults(handler=run_steer, action=name)
    run = commands.add_parser(
        "run",
        help="run the controller against the shared store (also runs inside serve)",
    )
    run.add_argument("--once", action="store_true", help="one look at each rollout, then exit")
    run.add_argument("--log-dir", metavar="DIR", help="the gateways' prediction log folder")
    run.add_argument(
        "--gateway", metavar="URL", help="a gateway to smoke-test blue-green candidates through"
    )
    run.set_defaults(handler=run_controller)


def _version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"VERSION must be a whole number >= 1, got {text!r}")
    return int(text)


def _steps(text: str | None) -> list[float] | None:
    from shipyard.errors import UsageError

    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--steps {text!r}: give percentages like 5,25,50,100") from None


def _describe(rollout: dict[str, Any]) -> str:
    strategy = rollout["strategy"]
    head = (
        f"#{rollout['id']} {rollout['model']}: version {rollout['candidate']} "
        f"({strategy}) vs stable {rollout['stable']}: {rollout['state']}"
    )
    lines = [head]
    if rollout["state"] in ("running", "paused"):
        weight = rollout.get("weight")
        if strategy == "canary":
            steps = rollout["spec"].get("steps", [])
            lines.append(
                f"  step {rollout['step'] + 1}/{len(steps)}: candidate {weight:g}%, "
                f"stable {100 - weight:g}%"
            )
        elif strategy == "shadow":
            lines.append("  candidate receives a copy of all traffic; users see stable")
        else:
            lines.append(f"  candidate {weight:g}% of traffic")
    decision = rollout.get("last_decision") or {}
    if decision:
        lines.append(f"  last decision: {decision.get('action', '?')} at {decision.get('at', '?')}")
        for reason in decision.get("reasons", [])[:6]:
            lines.append(f"    - {reason}")
        for check in decision.get("checks", [])[:10]:
            mark = {True: "pass", False: "FAIL", None: "wait"}.get(check.get("passed"), "?")
            lines.append(f"    [{mark}] {check.get('name')}: {check.get('detail', '')}")
    if rollout.get("reason"):
        lines.append(f"  reason: {rollout['reason']}")
    return "\n".join(lines)


def run_deploy(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.cli.remote import remote_from_env
    from shipyard.project import open_project
    from shipyard.rollout import api

    remote = remote_from_env()
    if remote is not None:
        body: dict[str, Any] = {"version": args.version, "strategy": args.strategy}
        result = remote.call("POST", f"/admin/rollouts/{args.model}", body)
    else:
        overrides = {
            "steps": _steps(args.steps),
            "step_duration": args.step_duration,
            "sticky": args.sticky,
        }
        with open_project() as project:
            result = api.start_rollout(
                project,
                args.model,
                args.version,
                actor=project.actor,
                strategy=args.strategy,
                overrides=overrides,
            )
    if args.json:
        emit_json(result)
    else:
        info(_describe(result))
        if result["state"] == "running":
            info("  the controller in `shipyard serve` (or `shipyard rollout run`) takes it on")
    return 0


def _rollouts(model: str | None) -> list[dict[str, Any]]:
    from shipyard.cli.remote import remote_from_env
    from shipyard.project import open_project
    from shipyard.rollout import api

    remote = remote_from_env()
    if remote is not None:
        path = "/admin/rollouts" + (f"/{model}" if model else "")
        found = remote.call("GET", path)
        return found if isinstance(found, list) else [found]
    with open_project() as project:
        return api.status(project, model)


def run_status(args: argparse.Namespace) -> int:
    import time

    from shipyard.cli.output import emit_json, info

    while True:
        rollouts = _rollouts(args.model)
        if args.json:
            emit_json(rollouts)
        elif not rollouts:
            info("no live rollouts")
        else:
            info("\n".join(_describe(r) for r in rollouts))
        if not args.watch or not any(r["state"] in ("running", "paused") for r in rollouts):
            return 0
        time.sleep(1.0)
        if not args.json:
            info("")


def run_list(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.project import open_project
    from shipyard.rollout.state import RolloutStore

    with open_project() as project:
        rollouts = [r.to_json() for r in RolloutStore(project.metadata).history(args.model)]
    if args.json:
        emit_json(rollouts)
        return 0
    for r in rollouts:
        info(
            f"#{r['id']:<4} {r['model']}:{r['candidate']:<4} {r['strategy']:<9} "
            f"{r['state']:<11} {r['created_at'][:19]}  {r['reason'] or ''}"
        )
    return 0


def run_steer(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.cli.remote import remote_from_env
    from shipyard.project import open_project
    from shipyard.rollout import api

    remote = remote_from_env()
    if remote is not None:
        result = remote.call("POST", f"/admin/rollouts/{args.model}/{args.action}", {})
    else:
        operation = {
            "pause": api.pause,
            "resume": api.resume,
            "promote": api.promote,
            "abort": api.abort,
        }[args.action]
        with open_project() as project:
            result = operation(project, args.model, actor=project.actor)
    if args.json:
        emit_json(result)
    else:
        info(_describe(result))
    return 0


def run_controller(args: argparse.Namespace) -> int:
    import signal
    import threading
    from pathlib import Path

    from shipyard.cli.output import info
    from shipyard.project import open_project
    from shipyard.rollout.controller import Controller

    with open_project() as project:
        controller = Controller(
            project,
            log_dir=Path(args.log_dir) if args.log_dir else None,
            gateway_url=args.gateway,
        )
        if args.once:
            for rollout in controller.tick():
                info(_describe(rollout.to_json()))
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        info("rollout controller running (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            controller.run(stop)
    return 0

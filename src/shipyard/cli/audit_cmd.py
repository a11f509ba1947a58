"""``shipyard audit``: read and verify the tamper-evident audit log."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import positive_int

NAMES = ("audit",)


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="read or verify the audit log")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="recompute the hash chain; exit 1 if an entry was changed or removed",
    )
    verify.add_argument("--json", action="store_true", help="print as JSON")
    verify.set_defaults(handler=run_verify)
    log = commands.add_parser("log", help="list audit entries")
    log.add_argument("--action", help="only entries with this action")
    log.add_argument("--limit", type=positive_int, help="at most this many entries")
    log.add_argument("--json", action="store_true", help="print as JSON")
    log.set_defaults(handler=run_log)


def run_verify(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.project import open_project

    with open_project() as project:
        report = project.metadata.verify_audit()
    if args.json:
        emit_json(report)
    elif report.ok:
        info(f"audit log intact: {report.entries} entries, hash chain verified")
    else:
        info(f"audit log TAMPERED: {report.problem}")
    return 0 if report.ok else 1


def run_log(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, table
    from shipyard.project import open_project

    with open_project() as project:
        events = project.metadata.events(action=args.action, limit=args.limit)
    if args.json:
        emit_json(events)
        return 0
    table(
        ["SEQ", "AT", "ACTOR", "ACTION", "SUBJECT"],
        [[e.seq, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.subject] for e in events],
    )
    return 0

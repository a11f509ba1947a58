"""``shipyard status``: which stages are out of date, and why."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("status",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="which stages are out of date and why (changes nothing)",
        description="Compare every stage with shipyard.lock and say which would run and "
        "why. Exit 0 either way; use --json for scripts.",
    )
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info, table
    from shipyard.pipeline.runner import pipeline_status
    from shipyard.project import open_project

    with open_project() as project:
        report = pipeline_status(project)
    if args.json:
        emit_json(
            [{"stage": o.name, "status": o.status, "reason": o.reason} for o in report.stages]
        )
        return 0
    if all(o.status == "up-to-date" for o in report.stages):
        info("Everything is up to date.")
        return 0
    table(
        ["STAGE", "STATUS", "WHY"],
        [
            [o.name, "out of date" if o.status == "would-run" else o.status, o.reason]
            for o in report.stages
        ],
    )
    return 0

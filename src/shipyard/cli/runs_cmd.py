"""``shipyard runs``: list recorded runs, or show one."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("runs",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "runs", help="list recorded runs (`runs show ID` for one)", description="List runs."
    )
    parser.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(handler=run_list)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    show = commands.add_parser("show", help="everything recorded about one run")
    show.add_argument("run_id", metavar="ID", help="run id (a unique prefix is enough)")
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(handler=run_show)


def run_list(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, table
    from shipyard.project import open_project

    with open_project() as project:
        runs = project.metadata.list_runs(project.name, limit=args.limit)
    if args.json:
        emit_json(runs)
        return 0
    table(
        ["ID", "STATUS", "STARTED", "COMMIT", "METRICS"],
        [
            [
                r.id,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                (r.git_commit or "")[:8] + ("*" if r.git_dirty else ""),
                " ".join(f"{k}={v:.4g}" for k, v in r.metrics.items() if _is_number(v)),
            ]
            for r in runs
        ],
    )
    return 0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_show(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json
    from shipyard.project import open_project

    with open_project() as project:
        run = project.metadata.get_run(args.run_id)
    emit_json(run)
    return 0

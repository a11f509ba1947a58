"""``shipyard runs``: list recorded runs, or show one."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import positive_int

NAMES = ("runs",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "runs", help="list recorded runs (`runs show ID` for one)", description="List runs."
    )
    parser.add_argument("--limit", type=positive_int, default=20, help="how many (default 20)")
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
    import dataclasses

    from shipyard.cli.output import emit_json
    from shipyard.project import open_project

    with open_project() as project:
        run = project.metadata.get_run(args.run_id)
        stages = project.metadata.stage_runs(run.id)
    if args.json:
        emit_json({**dataclasses.asdict(run), "stages": stages})
        return 0
    _print_run(run, stages)
    return 0


def _print_run(run: Any, stages: list[dict[str, Any]]) -> None:
    import sys

    from shipyard.cli.output import table

    out = sys.stdout
    out.write(f"run {run.id}  {run.status}  project {run.project}\n")
    ended = run.ended_at.strftime("%H:%M:%S") if run.ended_at else "-"
    out.write(f"started {run.started_at:%Y-%m-%d %H:%M:%S}  ended {ended}\n")
    dirty = " (uncommitted changes)" if run.git_dirty else ""
    out.write(f"commit  {run.git_commit or '(not a git repository)'}{dirty}\n")
    out.write(
        f"python  {run.environment.get('python', '?')}  "
        f"executor {run.environment.get('executor', '?')}\n"
    )
    if run.message:
        out.write(f"message {run.message}\n")
    for title, values in (("params", run.params), ("metrics", run.metrics)):
        if values:
            out.write(f"\n{title}:\n")
            for key, value in values.items():
                out.write(f"  {key} = {value}\n")
    out.write("\nstages:\n")
    table(
        ["STAGE", "STATUS", "SECONDS", "CPU S", "PEAK RSS", "WHY"],
        [
            [
                s["stage"],
                s["status"] + (f" (exit {s['exit_code']})" if s["exit_code"] else ""),
                _seconds(s),
                _cpu(s["resources"]),
                _mib(s["resources"].get("max_rss_bytes") or s["resources"].get("peak_rss_bytes")),
                s["reason"] or "",
            ]
            for s in stages
        ],
    )
    for s in stages:
        if s["status"] == "failed" and s["log_tail"]:
            out.write(f"\nlast lines of {s['stage']}:\n")
            out.write("".join(f"  {line}\n" for line in s["log_tail"].splitlines()))


def _seconds(row: dict[str, Any]) -> str:
    if row["started_at"] and row["ended_at"]:
        return f"{(row['ended_at'] - row['started_at']).total_seconds():.1f}"
    return ""


def _cpu(resources: dict[str, Any]) -> str:
    user, system = resources.get("cpu_user_seconds"), resources.get("cpu_system_seconds")
    return "" if user is None else f"{user + system:.1f}"


def _mib(value: int | None) -> str:
    return "" if not value else f"{value / 2**20:.0f} MiB"

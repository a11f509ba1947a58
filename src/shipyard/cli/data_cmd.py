"""``shipyard data add|push|pull`` and ``shipyard checkout RUN``."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("data", "checkout")


def register(sub: Any) -> None:
    parser = sub.add_parser("data", help="version data files and folders; push/pull them")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add = commands.add_parser(
        "add",
        help="store PATH and write PATH.shipyard (a pointer for git)",
        description="Store a file or folder in the artifact store, write a small pointer "
        "file PATH.shipyard to commit, and add PATH to .gitignore.",
    )
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--json", action="store_true", help="print as JSON")
    add.set_defaults(handler=run_add)
    for name, verb in (("push", "copy versioned data to"), ("pull", "fetch versioned data from")):
        cmd = commands.add_parser(name, help=f"{verb} the remote store")
        cmd.add_argument("--remote", metavar="URL", help="remote store URL (default: config)")
        cmd.add_argument("--json", action="store_true", help="print as JSON")
        cmd.set_defaults(handler=run_transfer, verb=name)
    checkout = sub.add_parser(
        "checkout",
        help="restore the data and outputs of a recorded run",
        description="Put back every file a run read or wrote whose content is in the "
        "artifact store; list the others (code is versioned by git).",
    )
    checkout.add_argument("run_id", metavar="RUN")
    checkout.add_argument("--json", action="store_true", help="print as JSON")
    checkout.set_defaults(handler=run_checkout)


def run_add(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.pipeline.data import add_data
    from shipyard.project import open_project

    with open_project() as project:
        refs = [add_data(project, path, actor=project.actor) for path in args.paths]
    if args.json:
        emit_json(refs)
        return 0
    for ref in refs:
        info(f"added {ref.path} ({ref.files} file(s), {ref.size:,} bytes) -> {ref.oid[:12]}")
        info(f"  commit {ref.pointer}; the data is git-ignored")
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.pipeline.data import pull, push
    from shipyard.project import open_project

    with open_project() as project:
        report = (push if args.verb == "push" else pull)(project, args.remote)
    if args.json:
        emit_json(report)
    else:
        info(
            f"{args.verb}: {report.considered} versioned path(s), "
            f"{report.transferred} object(s) transferred"
        )
        for path in report.restored:
            info(f"  restored {path}")
        for path in report.missing:
            info(f"  missing: {path} is in neither store")
    return 1 if report.missing else 0


def run_checkout(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.pipeline.data import checkout_run
    from shipyard.project import open_project

    with open_project() as project:
        report = checkout_run(project, args.run_id)
    if args.json:
        emit_json(report)
        return 0
    info(
        f"checked out run {report.run_id}: {len(report.restored)} restored, "
        f"{len(report.unchanged)} already matching"
    )
    for path in report.restored:
        info(f"  restored {path}")
    if report.not_stored:
        how = (
            f"restore with `git checkout {report.git_commit[:12]} -- PATH` if they differ"
            if report.git_commit
            else "the run recorded no git commit to restore them from"
        )
        info(f"not in the artifact store ({how}):")
        for path in report.not_stored:
            info(f"  {path}")
    return 0

"""``shipyard run``: run the pipeline, re-running only what changed."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("run",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="run the pipeline; unchanged stages are skipped or restored from cache",
        description="Run the stages of shipyard.yaml in dependency order. A stage whose "
        "command, dependencies, params and outputs are unchanged is skipped; one whose "
        "outputs are in the cache is restored; the rest run. Exit 1 if a stage fails.",
    )
    parser.add_argument(
        "-s",
        "--stage",
        action="append",
        default=[],
        metavar="NAME",
        help="run this stage and what it needs (repeatable)",
    )
    parser.add_argument(
        "--downstream", action="store_true", help="with --stage: also the stages after it"
    )
    parser.add_argument(
        "--single", action="store_true", help="with --stage: not its upstream stages"
    )
    parser.add_argument("-f", "--force", action="store_true", help="run even if up to date")
    parser.add_argument(
        "--dry", action="store_true", help="say what would run and why; change nothing"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run up to N independent stages at once (default 1)",
    )
    parser.add_argument(
        "--executor",
        default="local",
        metavar="NAME",
        help="where stages run: local (default) or ray",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster address for --executor ray (default: auto, or a local cluster)",
    )
    parser.add_argument("-m", "--message", help="a note stored with the run")
    parser.add_argument("-q", "--quiet", action="store_true", help="no stage output")
    parser.add_argument("--json", action="store_true", help="print the run report as JSON")
    parser.set_defaults(handler=run)


def make_executor(args: argparse.Namespace) -> Any:
    from shipyard.errors import UsageError

    if args.executor == "local":
        from shipyard.pipeline.executors import LocalExecutor

        return LocalExecutor()
    if args.executor == "ray":
        from shipyard.pipeline.ray_executor import RayExecutor

        return RayExecutor(address=args.ray_address)
    raise UsageError(f"unknown executor {args.executor!r}", hint="use --executor local or ray")


def run(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.errors import UsageError
    from shipyard.pipeline.executors import Console
    from shipyard.pipeline.runner import RunOptions, run_pipeline
    from shipyard.project import open_project

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if (args.downstream or args.single) and not args.stage:
        raise UsageError("--downstream and --single need --stage NAME")
    options = RunOptions(
        force=args.force,
        stages=tuple(args.stage),
        downstream=args.downstream,
        single=args.single,
        dry=args.dry,
        jobs=args.jobs,
        message=args.message,
    )
    with open_project() as project:
        report = run_pipeline(
            project,
            options,
            executor=make_executor(args),
            console=Console(quiet=args.quiet or args.json),
        )
    if args.json:
        emit_json(report)
    elif report.status == "up-to-date":
        info("Everything is up to date.")
    elif report.run_id:
        info(f"Run {report.run_id}: {report.status}.")
    return 0 if report.ok else 1

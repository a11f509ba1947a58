"""``shipyard diff RUN_A RUN_B``: changed params, data and metrics between two runs."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("diff",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "diff",
        help="compare two runs: params, data hashes and metrics that changed",
        description="Show what changed from RUN_A to RUN_B (ids or unique prefixes).",
    )
    parser.add_argument("run_a", metavar="RUN_A")
    parser.add_argument("run_b", metavar="RUN_B")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(handler=run)


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) >= 64:
        return value[:12]
    return "-" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info, table
    from shipyard.pipeline.history import diff_runs
    from shipyard.project import open_project

    with open_project() as project:
        diff = diff_runs(project.metadata, args.run_a, args.run_b)
    if args.json:
        emit_json(diff)
        return 0
    if diff.empty:
        info(f"runs {diff.a} and {diff.b} have the same params, data and metrics")
        return 0
    rows = []
    for kind, changes in (("param", diff.params), ("data", diff.data), ("metric", diff.metrics)):
        for c in changes:
            delta = c.delta
            rows.append(
                [
                    kind,
                    c.key,
                    _short(c.old),
                    _short(c.new),
                    "" if delta is None else f"{delta:+.4g}",
                ]
            )
    table(["KIND", "KEY", diff.a, diff.b, "CHANGE"], rows)
    return 0

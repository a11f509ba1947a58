"""``shipyard check`` (run the quality gates) and ``shipyard report`` (render a stored
report again)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAMES = ("check", "report")

_CHECK_EPILOG = """\
exit codes: 0 every gate passed, 1 a gate failed, 2 configuration error.

Data expectations (gates.data.expectations) are mappings with one rule:
  {column: C, in: [a, b]}      {column: C, between: [low, high]}   (null: open)
  {column: C, regex: '^...$'}  {column: C, unique: true}   {column: C, not_null: true}
  {name: N, expr: "amount <= income * 20"}   (a pandas eval expression, true per row)
optional: name, mostly (share of rows that must pass, default 1), frames ([train, test])
"""


def register(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="run the quality gates on a candidate model (exit 1 if one fails)",
        description="Run every gate configured under `gates:` in shipyard.yaml — data, "
        "metrics, baseline, fairness, latency, poisoning, membership, card — and write "
        "report.json, report.md and report.html.",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "model", nargs="?", metavar="MODEL_PATH|MODEL:N", help="default: gates.model"
    )
    check.add_argument("--output", "-o", metavar="DIR", help="default .shipyard/reports/<time>/")
    check.add_argument("--json", action="store_true", help="print report.json to stdout")
    check.add_argument("--seed", type=int, default=0, help="seed for bootstrap and sampling")
    check.set_defaults(handler=run_check)

    report = sub.add_parser(
        "report",
        help="render report.md and report.html again from a stored check report",
        description="REF is a report.json path, `latest`, a model version (MODEL:N, "
        "from its stored gate results), a report id or the pipeline run id of the model.",
    )
    report.add_argument("ref", metavar="REPORT.json|latest|MODEL:N|ID|RUN")
    report.add_argument("--output", "-o", metavar="DIR", help="default .shipyard/reports/<id>/")
    report.add_argument("--markdown", action="store_true", help="also print report.md to stdout")
    report.set_defaults(handler=run_report)


def _model_argument(value: str | None, root: Path) -> str | None:
    """A path the user typed is relative to where they are; the runner wants it
    relative to the project root (or absolute, when it lies outside)."""
    if not value or not Path(value).exists():
        return value
    path = Path(value).absolute()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _print_table(report: Any) -> None:
    from shipyard.cli.output import info

    icons = {"passed": "✓", "failed": "✗"}
    width = max(len(g.name) for g in report.gates) if report.gates else 4
    for gate in report.gates:
        mark = icons.get(gate.status, "-")
        summary = gate.summary if len(gate.summary) <= 160 else gate.summary[:157] + "..."
        info(f"{mark} {gate.name.ljust(width)}  {gate.status:<7} {gate.seconds:6.2f}s  {summary}")


def run_check(args: argparse.Namespace) -> int:
    from shipyard.checks.report import record_report, report_folder, write_reports
    from shipyard.checks.runner import run_checks
    from shipyard.cli.output import info
    from shipyard.project import open_project

    with open_project() as project:
        model = _model_argument(args.model, project.root)
        report = run_checks(project, model, seed=args.seed)
        folder = Path(args.output) if args.output else report_folder(project.state_dir, report.id)
        paths = write_reports(report, folder)
        record_report(project, report)
    _print_table(report)
    verdict = "passed" if report.passed else "FAILED"
    info(f"{report.model}: {verdict}; reports in {folder}/ (report.json, report.md, report.html)")
    if args.json:
        sys.stdout.write(paths["json"].read_text(encoding="utf-8"))
    return 0 if report.passed else 1


def run_report(args: argparse.Namespace) -> int:
    from shipyard.checks.report import find_report, report_folder, write_reports
    from shipyard.cli.output import info
    from shipyard.project import open_project

    with open_project() as project:
        report = find_report(project, args.ref)
        folder = (
            Path(args.output)
            if args.output
            else report_folder(project.state_dir, report.id or "report")
        )
    paths = write_reports(report, folder)
    info(f"rendered report {report.id} ({'passed' if report.passed else 'failed'}) into {folder}/")
    if args.markdown:
        sys.stdout.write(paths["md"].read_text(encoding="utf-8"))
    return 0

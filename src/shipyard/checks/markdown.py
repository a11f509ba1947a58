"""report.md: the check as a pull-request comment.

A verdict line, a table with one row per gate (✅ passed, ❌ failed, ⏭ skipped), the
metrics against their targets and the baseline, what to do about each failure, and
the lineage. User-provided text is escaped: no HTML gets through, and a ``|`` cannot
break a table.
"""

from __future__ import annotations

import math
from typing import Any

from shipyard.checks.base import FAILED, PASSED
from shipyard.checks.report import CheckReport

__all__ = ["ICONS", "cell", "escape", "number", "render_markdown"]

ICONS = {PASSED: "✅", FAILED: "❌"}
SKIP_ICON = "⏭"
# Shown in the comment even without a target; report.html lists every metric.
_KEY_METRICS = ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "r2")


def escape(text: Any) -> str:
    """Text safe in Markdown that GitHub renders: no HTML gets through, one line."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace("\n", " ")


def cell(text: Any) -> str:
    """Text safe inside a table cell: also no ``|`` (a new column) and no backtick
    (a code span could swallow the cell border)."""
    return escape(text).replace("|", "\\|").replace("`", "'")


def number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return cell(value)


def icon(status: str) -> str:
    return ICONS.get(status, SKIP_ICON)


def _gate_table(report: CheckReport) -> list[str]:
    lines = ["| Gate | Result | Key numbers | Time |", "|---|---|---|---|"]
    for gate in report.gates:
        lines.append(
            f"| {cell(gate.name)} | {icon(gate.status)} {gate.status} | "
            f"{cell(gate.summary)[:400]} | {gate.seconds:.2f}s |"
        )
    return lines


def _metric_rows(report: CheckReport) -> list[str]:
    metrics = report.gate("metrics")
    if metrics is None or not metrics.numbers.get("metrics"):
        return []
    targets = metrics.numbers.get("thresholds", {})
    baseline = report.gate("baseline")
    compared = baseline.numbers.get("comparisons", {}) if baseline else {}
    lines = ["", "### Metrics (held-out set)", ""]
    lines += [
        "| Metric | Candidate | Target | Baseline | Difference (CI) |",
        "|---|---|---|---|---|",
    ]
    for name, value in metrics.numbers["metrics"].items():
        if name not in targets and name not in compared and name not in _KEY_METRICS:
            continue
        target = targets.get(name)
        versus = compared.get(name)
        goal = ""
        if target is not None:
            goal = f"{icon(PASSED if target['passed'] else FAILED)} {cell(target['threshold'])}"
        before = number(versus["baseline"]) if versus else ""
        lines.append(
            f"| {cell(name)} | {number(value)} | {goal} | {before} | {_difference(versus)} |"
        )
    return lines


def _difference(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    return f"{row['difference']:+.4g} ({row['ci_low']:+.3g} … {row['ci_high']:+.3g})"


def _failures(report: CheckReport) -> list[str]:
    failed = [g for g in report.gates if g.status == FAILED]
    if not failed:
        return []
    lines = ["", "### What to do", ""]
    for gate in failed:
        lines.append(f"- **{escape(gate.name)}**: {escape(gate.summary)}")
        if gate.advice:
            lines.append(f"  - {escape(gate.advice)}")
    return lines


def _lineage(report: CheckReport) -> list[str]:
    facts = report.lineage
    parts = []
    for key, label in (("version", "version"), ("run_id", "run"), ("git_commit", "commit")):
        if facts.get(key):
            parts.append(f"{label} `{escape(str(facts[key])[:12])}`")
    for name, info in report.data.items():
        if info.get("hash"):
            parts.append(f"{name} data `{escape(info['hash'][:12])}` ({info['rows']} rows)")
    return ["", "Lineage: " + ", ".join(parts)] if parts else []


def render_markdown(report: CheckReport) -> str:
    verdict = "✅ passed" if report.passed else "❌ failed"
    versus = f" vs `{escape(report.baseline)}`" if report.baseline else ""
    lines = [f"## Shipyard check {verdict}: `{escape(report.model)}`{versus}", ""]
    lines += _gate_table(report)
    lines += _metric_rows(report)
    lines += _failures(report)
    lines += _lineage(report)
    lines += [
        "",
        f"<sub>report {escape(report.id)} · seed {report.seed} · full report: report.html</sub>",
        "",
    ]
    return "\n".join(lines)

"""report.html: one self-contained page (inline CSS, charts as PNG data URIs).

Nothing is loaded from elsewhere: no script, no font, no stylesheet, no image file.
Every piece of text that came from the user, the data or a gate is escaped.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from typing import Any

from shipyard.checks.base import FAILED, PASSED
from shipyard.checks.report import CheckReport, gate_to_dict

__all__ = ["render_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2328;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.passed{color:#1a7f37}.failed{color:#cf222e}.skipped{color:#6e7781}
.verdict{font-size:1.2rem;font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:1rem}
.charts img{border:1px solid #d0d7de;max-width:100%}.advice{background:#fff8c5;padding:.6rem;
border-left:4px solid #d4a72c}code{background:#f6f8fa;padding:0 .2rem}
details{margin:.5rem 0}.small{color:#6e7781;font-size:.85rem}
"""
_ICONS = {PASSED: "✓", FAILED: "✗"}  # in every common font, unlike emoji
_MAX_ROWS = 200


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, dict | list):
        return escape(json.dumps(value, ensure_ascii=False, default=str)[:300])
    return escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class='small'>(none)</p>"
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(row.get(c))}</td>" for c in columns) + "</tr>"
        for row in rows[:_MAX_ROWS]
    )
    more = (
        f"<p class='small'>{len(rows) - _MAX_ROWS} more rows in report.json</p>"
        if len(rows) > _MAX_ROWS
        else ""
    )
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _img(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    label = escape(name.replace("_", " "))
    source = f"data:image/png;base64,{data}"
    return f'<figure><img alt="{label}" data-chart="{escape(name)}" src="{source}"></figure>'


def _charts(gate: dict[str, Any]) -> str:
    try:
        from shipyard.checks.plots import charts_for

        charts = dict(charts_for(gate))
    except ModuleNotFoundError as exc:  # matplotlib is in the `checks` extra
        charts = {}
        note = f"charts need {exc.name}: pip install 'shipyard-ml[checks]'"
        return f"<p class='small'>{escape(note)}</p>"
    charts.update({k: base64.b64decode(v) for k, v in (gate.get("plots") or {}).items()})
    if not charts:
        return ""
    return "<div class='charts'>" + "".join(_img(k, v) for k, v in charts.items()) + "</div>"


def _status(status: str) -> str:
    return f"<span class='{escape(status)}'>{_ICONS.get(status, '–')} {escape(status)}</span>"


def _summary(report: CheckReport) -> str:
    rows = "".join(
        f"<tr><td><a href='#gate-{escape(g.name)}'>{escape(g.name)}</a></td>"
        f"<td>{_status(g.status)}</td><td>{escape(g.summary)}</td><td>{g.seconds:.2f}s</td></tr>"
        for g in report.gates
    )
    return (
        f"<table><tr><th>gate</th><th>result</th><th>summary</th><th>time</th></tr>{rows}</table>"
    )


def _metrics_body(gate: dict[str, Any], report: CheckReport) -> str:
    numbers = gate["numbers"]
    targets = numbers.get("thresholds", {})
    base = report.gate("baseline")
    compared = base.numbers.get("comparisons", {}) if base else {}
    rows = []
    for name, value in (numbers.get("metrics") or {}).items():
        target, versus = targets.get(name) or {}, compared.get(name) or {}
        rows.append(
            {
                "metric": name,
                "candidate": value,
                "target": target.get("threshold", ""),
                "met": target.get("passed", ""),
                "baseline": versus.get("baseline"),
                "difference": versus.get("difference"),
                "CI low": versus.get("ci_low"),
                "CI high": versus.get("ci_high"),
            }
        )
    return (
        f"<p>Task: {_text(numbers.get('task'))}, {_text(numbers.get('rows'))} held-out rows.</p>"
        + _table(rows)
    )


def _data_body(gate: dict[str, Any]) -> str:
    numbers = gate["numbers"]
    parts = [_table(gate.get("tables", {}).get("findings", []))]
    for item in numbers.get("findings", []):
        if item.get("rows"):
            title = f"Sample rows: {escape(item['message'])}"
            parts.append(f"<details><summary>{title}</summary>{_table(item['rows'])}</details>")
    schema = json.dumps(numbers.get("schema", {}), indent=1, ensure_ascii=False, default=str)
    title = f"Schema ({_text(numbers.get('schema_source'))})"
    parts.append(f"<details><summary>{title}</summary><pre>{escape(schema)}</pre></details>")
    return "".join(parts)


def _fairness_body(gate: dict[str, Any]) -> str:
    tables = gate.get("tables", {})
    parts = ["<h3>Thresholds</h3>", _table(tables.get("thresholds", []))]
    for key, values in (gate["numbers"].get("attributes") or {}).items():
        parts.append(f"<h3>{escape(key)}</h3>")
        parts.append(_table([{"metric": k, "value": v} for k, v in values.items()]))
        parts.append(_table(tables.get(f"groups:{key}", [])))
    return "".join(parts)


def _flatten(value: Any, prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    if isinstance(value, dict) and depth < 3:
        return [r for k, v in value.items() for r in _flatten(v, f"{prefix}{k}.", depth + 1)]
    return [{"name": prefix.rstrip("."), "value": value}]


def _generic_body(gate: dict[str, Any]) -> str:
    parts = [_table(_flatten(gate.get("numbers") or {}))]
    for key, rows in (gate.get("tables") or {}).items():
        parts.append(f"<h3>{escape(key)}</h3>{_table(rows)}")
    return "".join(parts)


def _gate_section(gate: dict[str, Any], report: CheckReport) -> str:
    name = gate["name"]
    body = {
        "metrics": lambda: _metrics_body(gate, report),
        "baseline": lambda: _table(gate.get("tables", {}).get("comparison", [])),
        "fairness": lambda: _fairness_body(gate),
        "data": lambda: _data_body(gate),
    }.get(name, lambda: _generic_body(gate))()
    advice = (
        f"<p class='advice'>{escape(gate['advice'])}</p>"
        if gate.get("advice") and gate["status"] == FAILED
        else ""
    )
    return (
        f"<section id='gate-{escape(name)}'><h2>{escape(name)} {_status(gate['status'])}</h2>"
        f"<p>{escape(gate['summary'])}</p>{advice}{_charts(gate)}{body}</section>"
    )


def _lineage(report: CheckReport) -> str:
    facts = {k: v for k, v in report.lineage.items() if k not in ("params", "metrics", "data")}
    parts = ["<section id='lineage'><h2>Lineage</h2>", _table(_flatten(facts))]
    if report.lineage.get("params"):
        parts.append("<h3>Params</h3>" + _table(_flatten(report.lineage["params"])))
    if report.lineage.get("data"):
        parts.append("<h3>Pipeline inputs</h3>" + _table(_flatten(report.lineage["data"])))
    parts.append(
        "<h3>Checked data</h3>" + _table([{"set": k, **v} for k, v in report.data.items()])
    )
    return "".join(parts) + "</section>"


def render_html(report: CheckReport) -> str:
    verdict = "✓ passed" if report.passed else "✗ failed"
    versus = f" against <code>{escape(report.baseline)}</code>" if report.baseline else ""
    gates = "".join(_gate_section(gate_to_dict(g), report) for g in report.gates)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Shipyard check: {escape(report.model)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Shipyard check: <code>{escape(report.model)}</code>{versus}</h1>"
        f"<p class='verdict {'passed' if report.passed else 'failed'}'>{verdict}</p>"
        f"<p class='small'>report {escape(report.id)} · {escape(report.created.isoformat())} · "
        f"task {escape(str(report.task))} · seed {report.seed}</p>"
        f"{_summary(report)}{gates}{_lineage(report)}</body></html>\n"
    )

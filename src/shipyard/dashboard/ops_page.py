"""The operations pages: deployments (live), monitoring, alerts and the audit log."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from shipyard.dashboard import queries
from shipyard.dashboard.actions import ACTIONS
from shipyard.dashboard.auth import Viewer
from shipyard.dashboard.charts import line_chart, svg_open
from shipyard.dashboard.html import esc, fmt, pill, table, url
from shipyard.store.metadata import MetadataStore

__all__ = [
    "alerts_page",
    "audit_page",
    "deployments_page",
    "flatten",
    "monitor_reports",
    "monitoring_page",
    "split_bar",
]


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested JSON as (dotted key, leaf) pairs, for a decision's numbers."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list) and not all(isinstance(v, dict) for v in value):
        return [(prefix.rstrip("."), ", ".join(fmt(v) for v in value))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in flatten(v, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), value)]


def split_bar(arms: list[dict[str, Any]]) -> str:
    """The traffic split as one bar (SVG: the page's CSP allows no inline styles)."""
    if not arms:
        return '<p class="muted">no routing table</p>'
    parts, x = (
        [svg_open("split", "0 0 700 28", "traffic split")],
        0.0,
    )
    for i, arm in enumerate(arms):
        weight = max(float(arm.get("weight", 0)), 0.0)
        w = 6 * weight
        label = f"v{arm.get('version')} {fmt(weight, 3)}%"
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" class="bar s{i % 8}"/>')
        if w >= 60:
            parts.append(f'<text x="{x + 6:.1f}" y="19" class="on-bar">{esc(label)}</text>')
        elif w > 0:  # too thin to hold its label: write it just past the bar's end
            parts.append(f'<text x="{600 + 4:.1f}" y="19" class="axis">{esc(label)}</text>')
        x += w
    return "".join(parts) + "</svg>"


def _split(spec: dict[str, Any] | None) -> str:
    return f'<div class="split-holder" data-split>{split_bar((spec or {}).get("arms") or [])}</div>'


def _buttons(viewer: Viewer | None, model: str, state: str) -> str:
    if viewer is None:
        return ""
    shown = [a for a, needs in ACTIONS.items() if viewer.may(needs)]
    shown = [a for a in shown if not (a == "pause" and state != "running")]
    shown = [a for a in shown if not (a == "resume" and state != "paused")]
    return "".join(
        f'<button type="button" class="action {esc(a)}" data-action="{esc(a)}" '
        f'data-model="{esc(model)}">{esc(a)}</button>'
        for a in shown
    )


def deployments_page(metadata: MetadataStore, viewer: Viewer | None, live_traffic: bool) -> str:
    from shipyard.rollout.state import RolloutStore

    store = RolloutStore(metadata)
    routing = queries.routing_tables(metadata)
    sections = []
    for r in store.live():
        steps = r.steps
        step = f"{r.step + 1} of {len(steps)} ({fmt(r.weight, 3)}%)" if steps else str(r.step)
        decision = table(["number", "value"], flatten(r.last_decision or {}), cls="decision")
        sections.append(
            f'<section class="card rollout" data-model="{esc(r.model)}" id="rollout-{r.id}">'
            f"<h2>{esc(r.model)}: v{esc(r.candidate)} over v{esc(r.stable)} "
            f'{pill(r.strategy, "")} <span class="state">{pill(r.state, "alias")}</span></h2>'
            f'<p>step <span class="step">{esc(step)}</span> · started by {esc(r.created_by)} '
            f"{esc(fmt(r.created_at))}{esc(' · ' + r.reason if r.reason else '')}</p>"
            f"{_split(routing.get(r.model))}"
            f'<div class="buttons">{_buttons(viewer, r.model, r.state)}'
            '<span class="result" role="status"></span></div>'
            '<div class="live-charts grid3" data-live></div>'
            f"<h3>Last decision</h3>{decision}</section>"
        )
    if not sections:
        sections.append('<p class="muted">no live rollouts (start one with shipyard deploy)</p>')
    if not live_traffic:
        sections.insert(
            0,
            '<p class="muted">live traffic charts appear where a gateway serves this dashboard '
            "(shipyard serve, then /ui)</p>",
        )
    history = [
        (r.id, r.model, f"v{r.candidate}", r.strategy, r.state, r.reason, r.updated_at)
        for r in store.history(limit=50)
    ]
    return (
        "".join(sections)
        + "<h2>Recent rollouts</h2>"
        + table(["#", "model", "candidate", "strategy", "state", "reason", "updated"], history)
    )


def _series(
    rows: list[dict[str, Any]], label: Any = None
) -> tuple[list[str], dict[str, list[float | None]]]:
    """Rows as one series per name (or ``label(name)``) over their shared times."""
    times = sorted({r["at"] for r in rows})
    index = {t: i for i, t in enumerate(times)}
    series: dict[str, list[float | None]] = defaultdict(lambda: [None] * len(times))
    for r in rows:
        series[label(r["name"]) if label else r["name"]][index[r["at"]]] = r["value"]
    return [t.strftime("%m-%d %H:%M") for t in times], dict(series)


# What each chart draws, from the monitor's rows: (title, rows picked, series label).
_CHARTS: tuple[tuple[str, Any, Any], ...] = (
    (
        "drift statistic per feature",
        lambda r: r["kind"] == "drift" and r["name"].startswith("statistic."),
        lambda n: n.split(".", 1)[1],
    ),
    ("share of features drifted", lambda r: r["kind"] == "drift" and r["name"] == "share", None),
    (
        "performance",
        lambda r: r["kind"] == "performance" and "accuracy" not in r["name"],
        None,
    ),
    (
        "estimated vs realised accuracy",
        lambda r: r["name"] in ("accuracy", "estimated_accuracy"),
        None,
    ),
    ("data quality", lambda r: r["kind"] == "quality", None),
)


def _model_section(model: str, rows: list[dict[str, Any]]) -> str:
    charts = ""
    for title, pick, label in _CHARTS:
        picked = [r for r in rows if pick(r)]
        if picked:
            labels, series = _series(picked, label)
            charts += line_chart(series, labels, title=title, width=520)
    flagged = [(r["at"], r["kind"], r["name"], r["value"]) for r in rows if r["flagged"]][-50:]
    return (
        f"<h2>{esc(model)}</h2><section class='card grid2'>{charts}</section>"
        + "<h3>Flagged</h3>"
        + table(["at", "kind", "name", "value"], flagged[::-1])
    )


def monitoring_page(metadata: MetadataStore, reports: list[str]) -> str:
    """Charts over time per model, and the drift reports (the newest one embedded: its
    reference-versus-current distribution plots are drawn by the monitor)."""
    rows = queries.monitor_series(metadata)
    body = "".join(
        _model_section(model, [r for r in rows if r["model"] == model])
        for model in sorted({r["model"] for r in rows})
    )
    if not rows:
        body = '<p class="muted">no monitor results yet (shipyard monitor)</p>'
    links = "".join(
        f'<li><a href="{esc(url("monitoring", "reports", name))}" target="_blank" '
        f'rel="noopener">{esc(name)}</a></li>'
        for name in reports
    )
    if not links:
        return body + '<h2>Drift reports</h2><p class="muted">none yet</p>'
    newest = url("monitoring", "reports", reports[0])
    return (
        body
        + f"<h2>Drift reports</h2><ul>{links}</ul>"
        + f'<iframe class="report" src="{esc(newest)}" title="drift report" sandbox></iframe>'
    )


def alerts_page(metadata: MetadataStore) -> str:
    rows = []
    for a in queries.alerts(metadata):
        details = a.get("details") or {}
        values = details.get("values") or {}
        what = f"{details.get('condition', '')} " + ", ".join(
            f"{k}={fmt(v)}" for k, v in values.items()
        )
        kind = {"firing": "bad", "pending": "warn", "resolved": "ok"}.get(a["state"], "")
        rows.append(
            (
                pill(a["state"], kind),
                esc(a["rule"]),
                esc(a["model"] or ""),
                esc(a["severity"]),
                esc(what.strip()),
                esc(fmt(a["fired_at"] or a["started_at"])),
                esc(fmt(a["resolved_at"])),
                esc(", ".join(str(n) for n in (a.get("notified") or []))),
            )
        )
    headers = ["state", "rule", "model", "severity", "what fired", "since", "resolved", "notified"]
    return table(headers, rows, raw=tuple(range(8)), cls="alerts")


def audit_page(metadata: MetadataStore) -> str:
    report = metadata.verify_audit()
    if report.ok:
        status = pill(f"chain verified: {report.entries} entries intact", "ok")
    else:
        status = pill(f"chain broken at entry {report.first_bad_seq}: {report.problem}", "bad")
    rows = [
        (
            e["seq"],
            e["at"],
            e["actor"],
            e["action"],
            e["subject"],
            ", ".join(f"{k}={fmt(v)}" for k, v in flatten(e["details"])[:8]),
        )
        for e in queries.events(metadata)
    ]
    return f'<p class="verify">{status}</p>' + table(
        ["#", "at", "actor", "action", "subject", "details"], rows
    )


def monitor_reports(state_dir: Path | None) -> list[str]:
    folder = (state_dir / "reports" / "monitor") if state_dir else None
    if folder is None or not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.suffix == ".html" and p.is_file()]
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)  # newest first
    return [p.name for p in found[:100]]

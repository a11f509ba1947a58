"""The Models pages: every model, each model's versions, and one version in full."""

from __future__ import annotations

from typing import Any

from shipyard.dashboard import queries
from shipyard.dashboard.charts import line_chart, lineage_graph
from shipyard.dashboard.html import esc, fmt, link, pill, table, url
from shipyard.store.metadata import MetadataStore

__all__ = ["model_page", "models_page", "version_page"]

_CHARTED = 6  # metrics drawn across versions; the rest stay in the table


def models_page(metadata: MetadataStore) -> str:
    rows = [
        (
            link(url("models", m["name"]), m["name"]),
            esc(m["description"] or ""),
            m["versions"],
            m["latest"],
            " ".join(pill(a, "alias") for a in m["aliases"]),
            m["created_at"],
        )
        for m in queries.models_overview(metadata)
    ]
    headers = ["model", "description", "versions", "latest", "aliases", "created"]
    return table(headers, rows, raw=(0, 1, 4), cls="models")


def _gate_pill(passed: bool | None) -> str:
    if passed is None:
        return pill("not checked", "muted")
    return pill("gates passed", "ok") if passed else pill("gates failed", "bad")


def _metrics_chart(versions: list[dict[str, Any]]) -> str:
    ordered = versions[::-1]
    names: list[str] = []
    for v in ordered:
        for key, value in v["metrics"].items():
            if isinstance(value, int | float) and key not in names and len(names) < _CHARTED:
                names.append(key)
    if not names:
        return '<p class="muted">no metrics recorded with these versions</p>'
    series = {n: [_number(v["metrics"].get(n)) for v in ordered] for n in names}
    labels = [f"v{v['version']}" for v in ordered]
    return line_chart(series, labels, title="metrics across versions", width=760, height=240)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def model_page(
    metadata: MetadataStore, name: str, cache: queries.VersionCache | None = None
) -> str:
    return (cache or queries.VersionCache()).page(
        metadata, name, lambda versions: _model_markup(name, versions)
    )


def _model_markup(name: str, versions: list[dict[str, Any]]) -> str:
    rows = [
        (
            link(url("models", name, "versions", v["version"]), f"v{v['version']}"),
            pill(v["status"], "muted" if v["status"] == "archived" else ""),
            _gate_pill(v["gates_passed"]),
            f"{v['approvals']} approve / {v['rejections']} reject",
            " ".join(pill(a, "alias") for a in v["aliases"]),
            esc(v["description"] or ""),
            esc(", ".join(f"{k}={t}" for k, t in v["tags"].items())),
            esc(v["created_by"]),
            esc(fmt(v["created_at"])),
        )
        for v in versions
    ]
    headers = [
        "version",
        "status",
        "gates",
        "approvals",
        "aliases",
        "description",
        "tags",
        "by",
        "created",
    ]
    return f'<section class="card">{_metrics_chart(versions)}</section>' + table(
        headers, rows, raw=tuple(range(9)), cls="versions"
    )


def _card(card: dict[str, Any]) -> str:
    parts = []
    for key, value in card.items():
        if isinstance(value, dict | list):
            continue  # metrics, lineage and gates have sections of their own
        if value in (None, ""):
            continue
        parts.append(f"<dt>{esc(key.replace('_', ' '))}</dt><dd>{esc(value)}</dd>")
    return f'<dl class="card-fields">{"".join(parts)}</dl>' if parts else "<p>empty</p>"


def _gates(detail: dict[str, Any], name: str, version: int) -> str:
    gates = detail.get("gates") or {}
    if not gates:
        return (
            '<p class="muted">no gate results (run shipyard check, then register with --gates)</p>'
        )
    rows = [
        (g.get("name"), pill(g.get("status"), "ok" if g.get("passed") else "bad"), g.get("summary"))
        for g in gates.get("gates", [])
        if isinstance(g, dict)
    ]
    report = ""
    if gates.get("id"):
        href = url("models", name, "versions", version, "report")
        report = (
            f'<p><a href="{esc(href)}" target="_blank" rel="noopener">open the check report</a></p>'
        )
    return report + table(
        ["gate", "status", "summary"], [(esc(a), b, esc(c)) for a, b, c in rows], raw=(0, 1, 2)
    )


def version_page(metadata: MetadataStore, name: str, version: int) -> str:
    detail = queries.version_detail(metadata, name, version)
    lineage = detail.get("lineage") or {}
    facts = [
        ("status", detail["status"]),
        ("aliases", ", ".join(detail["aliases"]) or "–"),
        ("format", detail["format"]),
        ("artifact", detail["oid"]),
        ("run", lineage.get("run_id")),
        (
            "commit",
            (lineage.get("git_commit") or "unknown")
            + (" (dirty)" if lineage.get("git_dirty") else ""),
        ),
        ("created", f"{fmt(detail['created_at'])} by {detail['created_by']}"),
        ("description", detail.get("description") or ""),
        ("tags", ", ".join(f"{k}={v}" for k, v in (detail.get("tags") or {}).items())),
    ]
    approvals = queries.approvals(metadata, name, version)
    approval_rows = [
        (a["actor"], a["role"], a["decision"], a["alias"], a["comment"], a["at"]) for a in approvals
    ]
    params = lineage.get("params") or {}
    graph = lineage_graph(
        lineage.get("data") or {},
        lineage.get("run_id"),
        lineage.get("git_commit"),
        len(params),
        f"{name}:v{version}",
    )
    metrics = lineage.get("metrics") or {}
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
        + "</dl>"
        + f'<h2>Lineage</h2><section class="card">{graph}</section>'
        + table(["param", "value"], sorted(params.items()))
        + table(["metric", "value"], sorted(metrics.items()))
        + "<h2>Gates</h2>"
        + _gates(detail, name, version)
        + "<h2>Approvals</h2>"
        + table(["who", "role", "decision", "alias", "comment", "at"], approval_rows)
        + "<h2>Model card</h2>"
        + _card(detail.get("card") or {})
    )

"""The Runs pages: recent runs, two runs side by side, and one run's stages."""

from __future__ import annotations

from typing import Any

from shipyard.dashboard import queries
from shipyard.dashboard.charts import line_chart, timeline
from shipyard.dashboard.html import esc, fmt, link, pill, table, url
from shipyard.store.metadata import MetadataStore

__all__ = ["compare_page", "run_page", "runs_page"]

_STATUS = {"succeeded": "ok", "failed": "bad", "running": ""}


def _seconds(row: dict[str, Any]) -> float:
    if row["started_at"] is None or row["ended_at"] is None:
        return 0.0
    return float((row["ended_at"] - row["started_at"]).total_seconds())


def _history_charts(runs: list[Any], stages: dict[str, list[dict[str, Any]]]) -> str:
    ordered = runs[::-1]
    names = sorted({s["stage"] for r in ordered for s in stages.get(r.id, [])})
    if not names:
        return ""
    labels = [r.id[:6] for r in ordered]

    def per_stage(value: Any) -> dict[str, list[float | None]]:
        found = {}
        for name in names:
            found[name] = [
                next((value(s) for s in stages.get(r.id, []) if s["stage"] == name), None)
                for r in ordered
            ]
        return found

    durations = per_stage(lambda s: _seconds(s) if s["status"] == "ran" else None)
    memory = per_stage(lambda s: (s["resources"].get("peak_rss_bytes") or 0) / 2**20 or None)
    cpu = per_stage(lambda s: s["resources"].get("cpu_percent_mean"))
    return (
        '<section class="card grid3">'
        + line_chart(durations, labels, title="stage time (s) per run", width=380)
        + line_chart(memory, labels, title="peak memory (MiB) per run", width=380)
        + line_chart(cpu, labels, title="mean CPU % per run", width=380)
        + "</section>"
    )


def runs_page(metadata: MetadataStore) -> str:
    runs = metadata.list_runs(limit=100)
    stages = queries.stage_history(metadata, [r.id for r in runs])
    rows = [
        (
            link(url("runs", r.id), r.id),
            pill(r.status, _STATUS.get(r.status, "")),
            esc(fmt(r.started_at)),
            esc(f"{(r.ended_at - r.started_at).total_seconds():.1f} s" if r.ended_at else "–"),
            esc((r.git_commit or "")[:10] + (" (dirty)" if r.git_dirty else "")),
            esc(", ".join(f"{k}={fmt(v)}" for k, v in list(r.metrics.items())[:4])),
        )
        for r in runs
    ]
    options = "".join(f'<option value="{esc(r.id)}">{esc(r.id)}</option>' for r in runs)
    form = (
        '<form method="get" action="/ui/runs/compare" class="compare">compare '
        f'<select name="a">{options}</select> with <select name="b">{options}</select> '
        '<button type="submit">compare</button></form>'
    )
    headers = ["run", "status", "started", "took", "commit", "metrics"]
    return _history_charts(runs, stages) + form + table(headers, rows, raw=tuple(range(6)))


def compare_page(metadata: MetadataStore, a: str, b: str) -> str:
    from shipyard.pipeline.history import diff_runs

    diff = diff_runs(metadata, a, b)

    def changes(title: str, items: list[Any], short: bool = False) -> str:
        rows = [
            (
                c.key,
                c.old[:12] if short and c.old else c.old,
                c.new[:12] if short and c.new else c.new,
                c.delta,
            )
            for c in items
        ]
        return f"<h2>{esc(title)}</h2>" + table(["name", diff.a, diff.b, "change"], rows)

    if diff.empty:
        return f"<p>runs {esc(diff.a)} and {esc(diff.b)} have the same params, data and metrics</p>"
    return (
        changes("Params", diff.params)
        + changes("Metrics", diff.metrics)
        + changes("Data (content ids)", diff.data, short=True)
    )


def run_page(metadata: MetadataStore, run_id: str) -> str:
    run = metadata.get_run(run_id)
    stages = metadata.stage_runs(run.id)
    first = min((s["started_at"] for s in stages if s["started_at"]), default=None)
    spans = [
        (
            s["stage"],
            (s["started_at"] - first).total_seconds(),
            (s["ended_at"] - first).total_seconds(),
        )
        for s in stages
        if first and s["started_at"] and s["ended_at"]
    ]
    rows = [
        (
            s["stage"],
            s["status"],
            s["reason"],
            f"{_seconds(s):.2f} s",
            s["resources"].get("cpu_percent_mean"),
            s["resources"].get("cpu_percent_max"),
            f"{(s['resources'].get('peak_rss_bytes') or 0) / 2**20:.0f} MiB",
            s["resources"].get("gpu_percent_mean"),
        )
        for s in stages
    ]
    facts = [
        ("status", run.status),
        ("commit", f"{run.git_commit or 'unknown'}{' (dirty)' if run.git_dirty else ''}"),
        ("started", fmt(run.started_at)),
        ("message", run.message or ""),
    ]
    return (
        '<dl class="facts">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
        + "</dl>"
        + f'<section class="card">{timeline(spans, title="stage timings")}</section>'
        + table(
            ["stage", "status", "why", "took", "CPU % mean", "CPU % max", "peak memory", "GPU %"],
            rows,
        )
        + "<h2>Params</h2>"
        + table(["param", "value"], sorted(run.params.items()))
        + "<h2>Metrics</h2>"
        + table(["metric", "value"], sorted(run.metrics.items()))
    )

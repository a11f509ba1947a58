"""Charts as inline SVG, drawn here: no charting library, nothing fetched at view time.

Each function takes plain numbers and returns SVG markup in which every label is
escaped. Colours come from the stylesheet through class names (``s0``…``s7``), so the
same chart reads in the page and in a screenshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from shipyard.dashboard.html import esc, fmt

__all__ = ["line_chart", "lineage_graph", "svg_open", "timeline"]

Series = Mapping[str, Sequence[float | None]]


def _text(x: float, y: float, content: str, cls: str = "axis", anchor: str = "start") -> str:
    """An SVG text element; ``content`` is escaped here."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{esc(content)}</text>'
    )


def _rect(x: float, y: float, width: float, height: float, cls: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" class="{cls}"/>'
    )


def svg_open(cls: str, view_box: str, label: str) -> str:
    """An <svg> start tag with its namespace declared: the page's script re-parses
    some charts as standalone SVG documents, where an undeclared namespace draws
    nothing."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" viewBox="{view_box}" '
        f'role="img" aria-label="{esc(label)}">'
    )


def _open(width: float, height: float, title: str) -> str:
    return svg_open("chart", f"0 0 {width} {height}", title)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _bounds(series: Series) -> tuple[float, float]:
    values = [v for s in series.values() for v in _finite(s)]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high - low < 1e-12:
        pad = abs(high) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def line_chart(
    series: Series, labels: Sequence[str], *, title: str = "", width: int = 560, height: int = 200
) -> str:
    """One line per series over the same x labels; gaps where a value is missing."""
    longest = max((len(name) for name in series), default=0)
    left, right, top, bottom = 48, min(12 + 6 * longest, 170), 22, 28  # legend on the right
    low, high = _bounds(series)
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    parts = [
        _open(width, height, title),
        _text(left, 14, title, "title"),
        _text(left - 4, top + 4, fmt(high, 3), anchor="end"),
        _text(left - 4, height - bottom, fmt(low, 3), anchor="end"),
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" class="grid"/>',
    ]
    step = max(1, n // 8)
    for i in range(0, len(labels), step):
        parts.append(_text(x(i), height - 10, labels[i], anchor="middle"))
    for k, (name, values) in enumerate(series.items()):
        points: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                if points:
                    segments.append(points)
                points = []
                continue
            points.append(f"{x(i):.1f},{y(v):.1f}")
        if points:
            segments.append(points)
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" class="s{k % 8}"/>')
            else:
                parts.append(f'<polyline points="{" ".join(seg)}" class="line s{k % 8}"/>')
        parts.append(_text(width - 4, top + 4 + 12 * k, name, f"legend s{k % 8}", "end"))
    parts.append("</svg>")
    return "".join(parts)


def timeline(
    spans: Sequence[tuple[str, float, float]], *, title: str = "", width: int = 560
) -> str:
    """Stage timings: (name, start, end) in seconds from the first start, as a Gantt row each."""
    row, left = 22, 110
    height = 30 + row * max(len(spans), 1)
    end = max((e for _, _, e in spans), default=1.0) or 1.0
    scale = (width - left - 60) / end
    parts = [
        _open(width, height, title),
        _text(4, 14, title, "title"),
    ]
    for i, (name, start, stop) in enumerate(spans):
        y = 22 + i * row
        parts.append(_text(left - 6, y + 13, name, anchor="end"))
        w = max((stop - start) * scale, 1.0)
        parts.append(_rect(left + start * scale, y, w, row - 6, f"bar s{i % 8}"))
        parts.append(_text(left + start * scale + w + 4, y + 13, f"{stop - start:.2f} s"))
    parts.append("</svg>")
    return "".join(parts)


def _box(x: float, y: float, w: float, label: str, sub: str, kind: str) -> str:
    return (
        f'<g class="node {kind}"><rect x="{x}" y="{y}" width="{w}" height="38" rx="6"/>'
        f'<text x="{x + 8}" y="{y + 16}">{esc(label)}</text>'
        f'<text x="{x + 8}" y="{y + 31}" class="sub">{esc(sub)}</text></g>'
    )


def lineage_graph(
    data: Mapping[str, str | None], run: str | None, commit: str | None, params: int, version: str
) -> str:
    """Data (and code) files → the run (with its commit and params) → the version."""
    items = list(data.items())[:30]
    height = max(60 + 46 * len(items), 140)
    mid = height / 2 - 19
    parts = [svg_open("chart lineage", f"0 0 760 {height}", "lineage")]
    for i, (path, oid) in enumerate(items):
        y = 20 + 46 * i
        parts.append(_box(10, y, 250, path, (oid or "untracked")[:16], "data"))
        parts.append(
            f'<path d="M260,{y + 19} C300,{y + 19} 300,{mid + 19} 330,{mid + 19}" class="edge"/>'
        )
    sub = f"commit {(commit or 'unknown')[:10]} · {params} params"
    parts.append(_box(330, mid, 220, f"run {run or 'unknown'}", sub, "run"))
    parts.append(f'<path d="M550,{mid + 19} L590,{mid + 19}" class="edge"/>')
    parts.append(_box(590, mid, 160, version, "model version", "version"))
    parts.append("</svg>")
    return "".join(parts)

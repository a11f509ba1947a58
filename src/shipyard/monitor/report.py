"""The drift report: one self-contained HTML page, and a Markdown summary.

The page uses the check report's stylesheet and table helper
(``shipyard.checks.htmlpage``) so both reports look alike, and the Markdown uses the
check comment's escaping (``shipyard.checks.markdown``). The per-feature charts are
inline SVG drawn from the histograms in the ``DriftReport`` rather than matplotlib
PNGs: monitoring runs beside the gateway, where the ``checks`` extra (matplotlib) may
not be installed, and a few rectangles need no plotting library. Every piece of text
from the data (column names, categories) is escaped; nothing is loaded from elsewhere.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from shipyard.checks.htmlpage import _STYLE, _table
from shipyard.checks.markdown import cell, number
from shipyard.monitor.drift import P_VALUE_TESTS, DriftReport, FeatureDrift

__all__ = ["drift_html", "drift_markdown"]

_WIDTH, _HEIGHT, _PAD = 420, 170, 22
_REFERENCE, _CURRENT = "#8c959f", "#1f6feb"
_MAX_CATEGORIES = 24
_TEST_NAMES = {
    "ks": "Kolmogorov–Smirnov",
    "chi2": "chi-square",
    "wasserstein": "Wasserstein (normed)",
    "jensen_shannon": "Jensen–Shannon distance",
    "psi": "PSI",
}


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _bars(ref: list[float], cur: list[float], top: float) -> str:
    """Side-by-side bars per bin: reference grey, current blue."""
    slot = (_WIDTH - 2 * _PAD) / max(len(ref), 1)
    plot = _HEIGHT - 2 * _PAD
    parts = []
    for index, (r, c) in enumerate(zip(ref, cur, strict=True)):
        x = _PAD + index * slot
        for offset, value, colour in ((0.08, r, _REFERENCE), (0.5, c, _CURRENT)):
            height = plot * value / top if top else 0.0
            parts.append(
                f'<rect x="{x + offset * slot:.1f}" y="{_PAD + plot - height:.1f}" '
                f'width="{slot * 0.42:.1f}" height="{height:.1f}" fill="{colour}"/>'
            )
    return "".join(parts)


def _label(x: float, text: str, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{_HEIGHT - 6}" font-size="10" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )


def _axis_labels(feature: FeatureDrift) -> str:
    if feature.edges:
        low, high = feature.edges[0], feature.edges[-1]
        return _label(_PAD, f"{low:.4g}", "start") + _label(_WIDTH - _PAD, f"{high:.4g}", "end")
    names = (feature.categories or [])[:_MAX_CATEGORIES]
    slot = (_WIDTH - 2 * _PAD) / max(len(names), 1)
    step = max(1, math.ceil(len(names) / 8))  # at most 8 labels fit under the bars
    return "".join(
        _label(_PAD + (i + 0.5) * slot, name[:10]) for i, name in enumerate(names) if i % step == 0
    )


def _legend() -> str:
    return (
        f'<rect x="{_WIDTH - 150}" y="4" width="10" height="10" fill="{_REFERENCE}"/>'
        f'<text x="{_WIDTH - 136}" y="13" font-size="10">reference</text>'
        f'<rect x="{_WIDTH - 80}" y="4" width="10" height="10" fill="{_CURRENT}"/>'
        f'<text x="{_WIDTH - 66}" y="13" font-size="10">current</text>'
    )


def distribution_svg(feature: FeatureDrift) -> str:
    """Reference vs current shares per bin (numeric) or category, as inline SVG."""
    ref = _shares(feature.reference_counts)[:_MAX_CATEGORIES]
    cur = _shares(feature.current_counts)[:_MAX_CATEGORIES]
    if not ref:
        return "<p class='small'>(no values to draw)</p>"
    top = max(ref + cur) or 1.0
    title = escape(f"{feature.name}: share of rows per {'bin' if feature.edges else 'category'}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'role="img" data-feature="{escape(feature.name)}"><title>{title}</title>'
        f'<rect width="100%" height="100%" fill="white" stroke="#d0d7de"/>'
        f"{_bars(ref, cur, top)}{_axis_labels(feature)}{_legend()}</svg>"
    )


def _score_text(feature: FeatureDrift) -> str:
    if feature.p_value is not None:
        return f"p = {feature.p_value:.4g}"
    return "n/a" if math.isnan(feature.statistic) else f"{feature.statistic:.4g}"


def _rule(feature: FeatureDrift) -> str:
    if feature.test in P_VALUE_TESTS:
        return f"p < {feature.threshold:g}"
    return f"≥ {feature.threshold:g}"


def _row(feature: FeatureDrift) -> dict[str, Any]:
    return {
        "feature": feature.name,
        "type": feature.kind,
        "test": _TEST_NAMES.get(feature.test, feature.test),
        "statistic": feature.statistic,
        "p-value / distance": _score_text(feature),
        "drift when": _rule(feature),
        "verdict": "DRIFT" if feature.drifted else "ok",
        "reference rows": feature.reference_size,
        "current rows": feature.current_size,
    }


def _section(feature: FeatureDrift) -> str:
    css, verdict = ("failed", "drift detected") if feature.drifted else ("passed", "no drift")
    note = f"<p class='small'>{escape(feature.note)}</p>" if feature.note else ""
    return (
        f"<section id='feature-{escape(feature.name)}'><h3>{escape(feature.name)} "
        f"<span class='{css}'>{verdict}</span></h3>"
        f"<p>{escape(_TEST_NAMES.get(feature.test, feature.test))}: {escape(_score_text(feature))}"
        f" (drift when {escape(_rule(feature))})</p>{note}{distribution_svg(feature)}</section>"
    )


def _all(report: DriftReport) -> list[FeatureDrift]:
    return report.features + ([report.prediction] if report.prediction else [])


def drift_html(
    report: DriftReport,
    *,
    title: str = "Drift report",
    reference_label: str = "reference",
    current_label: str = "current",
) -> str:
    """One self-contained HTML page: summary, a table of every test, and per-feature
    reference-vs-current distributions."""
    drifted = len(report.drifted_features())
    verdict = (
        f"<p class='verdict {'failed' if report.drifted else 'passed'}'>"
        f"{'✗ dataset drift' if report.drifted else '✓ no dataset drift'}: {drifted} of "
        f"{len(report.features)} features drifted ({report.share:.0%}; dataset drift at "
        f"≥ {report.settings.share:.0%})</p>"
    )
    versus = f"<p>{escape(reference_label)} (reference) vs {escape(current_label)} (current)</p>"
    prediction = ""
    if report.prediction:
        prediction = "<h2>Prediction drift</h2>" + _section(report.prediction)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{versus}{verdict}"
        f"<h2>Tests</h2>{_table([_row(f) for f in _all(report)])}{prediction}"
        "<h2>Features</h2><div class='charts'>"
        + "".join(_section(f) for f in report.features)
        + "</div></body></html>\n"
    )


def drift_markdown(report: DriftReport, *, title: str = "Drift report") -> str:
    """A Markdown summary (for a pull request, an issue or an alert body)."""
    icon = "❌" if report.drifted else "✅"
    state = "dataset drift" if report.drifted else "no dataset drift"
    lines = [
        f"### {icon} {cell(title)}: {state}",
        "",
        f"{len(report.drifted_features())} of {len(report.features)} features drifted "
        f"({report.share:.0%}; dataset drift at ≥ {report.settings.share:.0%}).",
        "",
        "| Feature | Type | Test | Statistic | p-value / distance | Drift when | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for feature in _all(report):
        name = feature.name + (" (prediction)" if feature is report.prediction else "")
        test = _TEST_NAMES.get(feature.test, feature.test)
        verdict = "❌ drift" if feature.drifted else "✅ ok"
        lines.append(
            f"| {cell(name)} | {feature.kind} | {cell(test)} | {number(feature.statistic)} "
            f"| {cell(_score_text(feature))} | {cell(_rule(feature))} | {verdict} |"
        )
    return "\n".join(lines) + "\n"

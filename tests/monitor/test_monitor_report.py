"""The drift report: self-contained HTML with one chart per feature, and Markdown."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd

from shipyard.monitor.drift import compute_drift
from shipyard.monitor.report import distribution_svg, drift_html, drift_markdown

HOSTILE = "<script>alert(1)</script>|`x`"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def report():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 3000),
            HOSTILE: rng.normal(0, 1, 3000),
            "city": rng.choice(["Oslo", '"><img src=y onerror=alert(2)>'], 3000),
            "prediction": rng.choice(["yes", "no"], 3000),
        }
    )
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    current["x"] = rng.normal(1.0, 1, 3000)
    return compute_drift(reference, current, prediction="prediction")


def test_html_is_self_contained_escaped_and_has_a_chart_per_feature() -> None:
    page = drift_html(report(), title="Drift <b>today</b>", reference_label="training v3")

    parser = Tags()
    parser.feed(page)
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert not [
        a
        for _, attrs in parser.tags
        for a in attrs.values()
        if a and "http" in a and a != "http://www.w3.org/2000/svg"
    ]
    charts = [attrs["data-feature"] for tag, attrs in parser.tags if tag == "svg"]
    assert charts == ["prediction", "x", HOSTILE, "city"]  # prediction section comes first
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Drift &lt;b&gt;today&lt;/b&gt;" in page and "training v3" in page
    assert "1 of 3 features drifted" in page


def test_table_rows_carry_test_statistic_threshold_and_verdict() -> None:
    drift = report()
    page = drift_html(drift)
    x = drift.feature("x")
    row = re.search(r"<tr><td>x</td>.*?</tr>", page).group(0)
    assert "Wasserstein (normed)" in row and f"{x.statistic:.4g}" in row
    assert "≥ 0.1" in row and "DRIFT" in row
    city = re.search(r"<tr><td>&quot;&gt;&lt;img.*?</tr>|<tr><td>city</td>.*?</tr>", page).group(0)
    assert "Jensen–Shannon" in city and ">ok<" in city


def test_svg_is_valid_and_bars_follow_the_shares() -> None:
    feature = report().feature("x")
    svg = distribution_svg(feature)

    root = ET.fromstring(svg)  # well-formed XML
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill") != "white"]
    reference_bars = [float(b.get("height")) for b in bars if b.get("fill") == "#8c959f"][:-1]
    current_bars = [float(b.get("height")) for b in bars if b.get("fill") == "#1f6feb"][:-1]
    assert len(reference_bars) == len(feature.reference_counts)
    tallest = max(feature.reference_counts + feature.current_counts)
    expected_ref = np.array(feature.reference_counts) / sum(feature.reference_counts)
    expected_cur = np.array(feature.current_counts) / sum(feature.current_counts)
    scale = max(expected_ref.max(), expected_cur.max())
    assert np.allclose(reference_bars, 126 * expected_ref / scale, atol=0.06)
    assert np.allclose(current_bars, 126 * expected_cur / scale, atol=0.06)
    assert tallest > 0
    # the current window moved right: its mass sits in later bins than the reference's
    centre = np.arange(len(expected_ref))
    assert (centre * expected_cur).sum() > (centre * expected_ref).sum() + 1


def test_markdown_summary_escapes_and_lists_every_test() -> None:
    text = drift_markdown(report(), title="nightly")
    lines = text.splitlines()
    assert lines[0] == "### ✅ nightly: no dataset drift"
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    assert rows[0].startswith("| x | numeric | Wasserstein (normed) |") and "❌ drift" in rows[0]
    assert "<script>" not in text and "&lt;script>" in text and "\\|'x'" in text
    assert rows[-1].startswith("| prediction (prediction) |")

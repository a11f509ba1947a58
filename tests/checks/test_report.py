"""report.html and report.md: self-contained, escaped, and the charts really render
(checked in headless Chromium)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from shipyard.checks.markdown import render_markdown
from shipyard.checks.report import CheckReport, write_reports
from shipyard.checks.runner import run_checks
from shipyard.project import open_project

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HOSTILE = "<script>alert('x')</script>|`"


@pytest.fixture
def hostile_report(example: Path, tmp_path: Path) -> tuple[CheckReport, dict[str, Path]]:
    """A failing check whose findings quote a value crafted to break out of HTML."""
    path = example / "data/prepared/test.csv"
    test = pd.read_csv(path)
    test.loc[:3, "purpose"] = HOSTILE
    test.to_csv(path, index=False)
    with open_project(example) as project:
        report = run_checks(project)
    return report, write_reports(report, tmp_path / "report")


def test_user_text_is_escaped(hostile_report):
    report, paths = hostile_report
    assert not report.passed
    html = paths["html"].read_text()
    assert "<script" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    markdown = paths["md"].read_text()
    assert "<script" not in markdown and "&lt;script>" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| data ")]
    assert table_rows and table_rows[0].count(" | ") == 3  # the pipe did not split the cell


def test_the_page_loads_nothing_from_elsewhere(hostile_report):
    _, paths = hostile_report
    html = paths["html"].read_text()
    sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert "<link" not in html and "<script" not in html and "@import" not in html


def test_the_json_round_trips_and_renders_the_same(hostile_report):
    report, paths = hostile_report
    again = CheckReport.from_dict(__import__("json").loads(paths["json"].read_text()))
    assert again.to_dict() == report.to_dict()
    assert render_markdown(again) == paths["md"].read_text()


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing: .ci/run must `apt-get install -y chromium`")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")


_PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const drawn = images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  document.body.setAttribute('data-probe', drawn.length + '/' + images.length);
});
</script>"""


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_charts_render_in_a_browser(hostile_report, tmp_path):
    browser = _chromium()
    _, paths = hostile_report
    page = tmp_path / "probe.html"  # a copy with a probe script that counts drawn images
    page.write_text(paths["html"].read_text().replace("</body>", _PROBE + "</body>"))
    dom = _headless(
        browser,
        tmp_path / "profile",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    )
    probe = re.search(r'data-probe="(\d+)/(\d+)"', dom.stdout)
    assert probe, dom.stderr[-2000:]
    drawn, total = map(int, probe.groups())
    assert total >= 5 and drawn == total  # confusion, ROC, PR, calibration, fairness

    shot = tmp_path / "shot.png"
    _headless(
        browser,
        tmp_path / "profile2",
        f"--screenshot={shot}",
        "--window-size=1280,4000",
        paths["html"].as_uri(),
    )
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 4000)
    colours = image.resize((320, 1000)).getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # charts, not a blank page

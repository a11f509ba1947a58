"""The dashboard in a real browser (headless Chromium through Playwright) against a
real gateway process (``shipyard serve``) over the credit-risk example, seeded with
the CLI and the Python API: init, run, check, register, approve, promote, users and
tokens, and a canary started with ``shipyard deploy``.

Proves: every page loads with no console error (a CSP violation is one), hostile text
stays inert, the canary shows up and its live chart draws real traffic, an approver's
rollback click moves routing in the store and the gateway then serves the stable
version, and a viewer has no button and is refused when forging the request.
Screenshots of each page go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
EVIL = "<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>"
ROW = {"age": 40, "income": 52000.0, "debt_ratio": 0.3, "history_years": 10,
       "amount": 9000.0, "purpose": "car"}  # fmt: skip
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """SHIPYARD_CHROMIUM, else the system Chromium, else Playwright's own (None)."""
    chosen = os.environ.get("SHIPYARD_CHROMIUM")
    if chosen:
        return chosen
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(name).exists():
            return name
    return shutil.which("chromium")


def shipyard(root: Path, *args: str, user: str = "alice") -> str:
    env = {**os.environ, "SHIPYARD_USER": user}
    for name in ("SHIPYARD_DB", "SHIPYARD_ARTIFACTS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"shipyard {' '.join(args)}: {result.stderr}"
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(root: Path) -> dict[str, str]:
    """The example, run and checked, its model registered twice (v2 with hostile
    text); v1 approved into production; an admin, a viewer and an approver."""
    import yaml

    import shipyard as api
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    api.init_project(root, example="credit-risk")
    config = yaml.safe_load((root / "shipyard.yaml").read_text())
    for name in ("latency", "poisoning", "membership"):  # slow gates with tests of their own
        config["gates"].pop(name, None)
    (root / "shipyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert api.run(root, quiet=True).status == "succeeded"
    report = json.loads(shipyard(root, "check", "--json"))
    gates = root / ".shipyard" / "reports" / report["id"] / "report.json"
    for description in ("the first model", EVIL):  # v2: the same model, hostile text
        shipyard(root, "register", "credit-risk", "model", "--gates", str(gates),
                 "--description", description)  # fmt: skip
    monitor = root / ".shipyard" / "reports" / "monitor"  # as `shipyard monitor` names it
    monitor.mkdir(parents=True)
    (monitor / "credit-risk-latest.html").write_text(
        "<!doctype html><title>drift</title><style>p{color:#333}</style><p>drift report</p>"
    )
    tokens = {}
    with open_project(root) as project:
        registry = open_registry(project)
        for ref in ("credit-risk:1", "credit-risk:2"):
            registry.decide(ref, actor="bob", decision="approve")
        registry.set_alias("credit-risk:1", "production", actor="alice")
        for name, role in (("root", "admin"), ("vera", "viewer"), ("ann", "approver")):
            registry.users.add(name, role, actor="root")
            tokens[name] = registry.users.create_token(name, name="ui", actor="root")
    return tokens


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The seeded example served by `shipyard serve` on a free loopback port."""
    root = tmp_path_factory.mktemp("credit-risk")
    tokens = seed(root)
    port = free_port()
    env = {**os.environ, "SHIPYARD_USER": "root"}
    log = (root / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "serve", "--port", str(port), "--no-controller"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (root / "serve.log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("the gateway did not become ready in 60 s")
        shipyard(root, "deploy", "credit-risk", "2", "--step-duration", "1h", user="root")
        yield {"root": root, "base": base, "tokens": tokens}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        except Exception as exc:  # no browser on this machine: say how to get one
            pytest.skip(f"no Chromium ({exc}); install it (apt-get install chromium)")
        yield launched
        launched.close()


class Tab:
    """A signed-in page that records console errors and uncaught exceptions."""

    def __init__(self, browser, site, user: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = site["base"]
        self.page.goto(f"{self.base}/ui/login")
        self.page.fill("input[name=token]", site["tokens"][user])
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/ui/models")

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("load")

    def close(self) -> None:
        self.context.close()


def predict(site, n: int) -> list[int]:
    url = f"{site['base']}/v1/models/credit-risk/predict"
    with httpx.Client(timeout=10) as client:
        return [client.post(url, json=ROW).json()["version"] for _ in range(n)]


def routing(site) -> list[tuple[int, float]]:
    from shipyard.project import open_project
    from shipyard.serving.control import ControlPlane

    with open_project(site["root"]) as project:
        table, _ = ControlPlane(project.metadata).get_table("credit-risk")
    return [(a.version, a.weight) for a in table.arms]


def last_event(site, action: str):
    from shipyard.project import open_project

    with open_project(site["root"]) as project:
        return project.metadata.events(action=action, last=True)[0]


PAGES = {
    "models": "/ui/models",
    "model": "/ui/models/credit-risk",
    "version": "/ui/models/credit-risk/versions/1",
    "version-2": "/ui/models/credit-risk/versions/2",
    "runs": "/ui/runs",
    "deployments": "/ui/deployments",
    "monitoring": "/ui/monitoring",
    "alerts": "/ui/alerts",
    "audit": "/ui/audit",
}


def test_every_page_loads_without_console_errors(browser, site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab = Tab(browser, site, "root")
    try:
        for name, path in PAGES.items():
            tab.open(path)
            assert tab.page.locator("h1").count() == 1, name
            tab.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        tab.open("/ui/monitoring")  # the newest drift report, embedded
        embedded = tab.page.frame_locator("iframe.report").locator("p")
        assert embedded.inner_text(timeout=10_000) == "drift report"
        with tab.page.expect_popup() as popup:
            tab.open(PAGES["version"])
            tab.page.click("text=open the check report")
        report = popup.value
        report.wait_for_load_state("load")
        assert "Shipyard check" in report.title()
        report.screenshot(path=str(SHOTS / "check-report.png"))
        assert tab.errors == []
    finally:
        tab.close()


def test_hostile_text_renders_inert(browser, site):
    tab = Tab(browser, site, "root")
    try:
        tab.open(PAGES["version-2"])
        assert tab.page.evaluate("window.__pwned") is None
        assert EVIL in tab.page.locator("dl.facts").inner_text()
    finally:
        tab.close()


def test_a_viewer_sees_the_canary_live_but_no_buttons_and_a_forged_post_is_refused(browser, site):
    tab = Tab(browser, site, "vera")
    try:
        tab.open("/ui/deployments")
        section = tab.page.locator('section.rollout[data-model="credit-risk"]')
        assert "v2 over v1" in section.locator("h2").inner_text()
        assert "v2 5%" in section.locator("[data-split]").inner_text()
        assert section.locator("button.action").count() == 0
        predict(site, 150)
        chart = section.locator("[data-live] polyline")
        chart.first.wait_for(timeout=15_000)  # the rate chart draws the traffic sent
        stamp = section.locator("[data-live]").get_attribute("data-updated")
        tab.page.wait_for_function(
            "s => document.querySelector('[data-live]').dataset.updated !== s", arg=stamp
        )
        tab.page.screenshot(path=str(SHOTS / "deployments-live.png"), full_page=True)
        assert tab.errors == []
        status = tab.page.evaluate(
            """async () => (await fetch('/ui/api/rollouts/credit-risk/rollback', {
                method: 'POST', body: '{}', headers: {
                  'content-type': 'application/json',
                  'x-csrf-token': document.querySelector('meta[name=csrf-token]').content,
                }})).status"""
        )
        assert status == 403
        assert routing(site) == [(1, 95.0), (2, 5.0)]
        assert tab.errors == [
            "Failed to load resource: the server responded with a status of 403 (Forbidden)"
        ]  # the forged request, and nothing else
    finally:
        tab.close()


def test_an_approver_clicks_rollback_and_the_gateway_serves_stable(browser, site):
    tab = Tab(browser, site, "ann")
    try:
        tab.open("/ui/deployments")
        section = tab.page.locator('section.rollout[data-model="credit-risk"]')
        section.locator("button[data-action=rollback]").click()
        section.locator(".result").filter(has_text="rollback: done").wait_for(timeout=15_000)
        assert routing(site) == [(1, 100.0)]
        assert set(predict(site, 40)) == {1}
        section.locator(".state").filter(has_text="ended").wait_for(timeout=5_000)
        section.locator("[data-split]").filter(has_text="v1 100%").wait_for(timeout=5_000)
        tab.page.screenshot(path=str(SHOTS / "deployments-rolled-back.png"), full_page=True)
        assert last_event(site, "rollout.rollback").actor == "ann"
        assert tab.errors == []
    finally:
        tab.close()

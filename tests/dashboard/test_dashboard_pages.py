"""The dashboard over HTTP (in-process, ASGI transport): every page renders from the
store, user text is escaped, sign-in and roles guard the buttons, and reports are
served only from where the store says they are."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shipyard.cli.ui_cmd import build_app
from shipyard.core.routing import table_from_json
from shipyard.dashboard.traffic import TrafficSampler, quantile
from shipyard.project import open_project
from shipyard.registry import open_registry
from shipyard.rollout.controller import canary_table
from shipyard.rollout.state import RolloutStore
from shipyard.serving.control import ControlPlane
from shipyard.serving.metrics import GatewayMetrics
from shipyard.store import schema

EVIL = "<script>alert('x')</script>"
ORIGIN = {"origin": "http://testserver"}
HOSTS = ("testserver", "127.0.0.1")


@pytest.fixture
def project(tmp_path, make_model, monkeypatch):
    """A project with model 'm' (v1 in production, v2 a candidate) and hostile text."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "shipyard.yaml").write_text("project: dash\nstages: {}\n")
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    for name in ("SHIPYARD_DB", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    project = open_project(root)
    registry = open_registry(project)
    registry.register(
        "m", make_model(tmp_path / "m1", seed=1), actor="alice", description=EVIL,
        gates={"passed": True},
    )  # fmt: skip
    registry.register("m", make_model(tmp_path / "m2", seed=2), actor="alice", tags={"note": EVIL})
    registry.set_alias("m:1", "production", actor="alice")
    yield project
    project.close()


def client(project) -> httpx.AsyncClient:
    app = build_app(project, HOSTS)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def fetch(project, *paths: str, headers: dict | None = None) -> list[httpx.Response]:
    async def go():
        async with client(project) as c:
            return [await c.get(p, headers=headers or {}) for p in paths]

    return asyncio.run(go())


def start_canary(project) -> None:
    table = canary_table("m", 1, 2, 5.0, None)
    RolloutStore(project.metadata).create(
        model="m", candidate=2, stable=1, strategy="canary",
        spec={"steps": [5, 25, 100]}, actor="alice", table=table,
    )  # fmt: skip


def add_users(project) -> dict[str, str]:
    users = open_registry(project).users
    users.add("root", "admin", actor="root")
    tokens = {}
    for name, role in (("vera", "viewer"), ("ann", "approver")):
        users.add(name, role, actor="root")
        tokens[name] = users.create_token(name, name="t", actor="root")
    return tokens


PAGES = [
    "/ui/models",
    "/ui/models/m",
    "/ui/models/m/versions/1",
    "/ui/runs",
    "/ui/deployments",
    "/ui/monitoring",
    "/ui/alerts",
    "/ui/audit",
]


def test_every_page_renders_with_a_strict_policy_and_no_inline_script(project):
    start_canary(project)
    v = schema.model_versions
    with project.metadata.transaction() as tx:
        for number, f1 in ((1, 0.7), (2, 0.8)):
            lineage = {"run_id": None, "metrics": {"f1": f1}, "data": {"data/raw.csv": "ab12"}}
            tx.execute(v.update().where(v.c.version == number).values(lineage=lineage))
    for response in fetch(project, *PAGES):
        assert response.status_code == 200, (response.url, response.text[:300])
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert scripts == ['<script src="/ui/static/dashboard.js" defer>']
        assert " style=" not in response.text  # the CSP would block it
    models, versions, version = fetch(project, *PAGES[:3])
    assert ">m</a>" in models.text and "production→v1" in models.text
    assert versions.text.count('href="/ui/models/m/versions/') == 2
    assert "<polyline" in versions.text and "v2" in versions.text  # f1 across versions
    assert "data/raw.csv" in version.text and "model card" in version.text.lower()


def test_user_text_is_escaped_everywhere_it_shows(project):
    for response in fetch(
        project, "/ui/models/m", "/ui/models/m/versions/1", "/ui/models/m/versions/2"
    ):
        assert "<script>alert" not in response.text
    page = fetch(project, "/ui/models/m")[0].text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_a_model_name_with_markup_cannot_break_out_of_a_link(project):
    from shipyard.dashboard.html import link, url

    markup = link(url("models", 'a"><img src=x onerror=alert(1)>'), EVIL)
    assert "<img" not in markup and "<script" not in markup
    assert url("models", "../../etc") == "/ui/models/..%2F..%2Fetc"


def test_unknown_things_are_404_pages_that_say_what_is_missing(project):
    missing_model, missing_version = fetch(project, "/ui/models/nope", "/ui/models/m/versions/9")
    assert missing_model.status_code == 404 and "no model named" in missing_model.text
    assert missing_version.status_code == 404 and "no version 9" in missing_version.text


def test_an_unknown_host_is_refused(project):
    response = fetch(project, "/ui/models", headers={"host": "evil.example"})[0]
    assert response.status_code == 400 and "unknown Host" in response.text


def test_with_users_pages_need_a_sign_in_and_a_valid_token_gets_a_strict_cookie(project):
    tokens = add_users(project)

    async def go():
        async with client(project) as c:
            anonymous = await c.get("/ui/models")
            bad = await c.post("/ui/login", data={"token": "shp_wrong"}, headers=ORIGIN)
            good = await c.post("/ui/login", data={"token": tokens["vera"]}, headers=ORIGIN)
            after = await c.get("/ui/models")
            return anonymous, bad, good, after

    anonymous, bad, good, after = asyncio.run(go())
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ui/login"
    assert bad.status_code == 401 and "unknown, expired or revoked" in bad.text
    cookie = good.headers["set-cookie"].lower()
    assert good.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
    assert tokens["vera"] not in good.headers["set-cookie"]  # only a session id leaves
    assert after.status_code == 200 and "vera (viewer)" in after.text


def test_a_foreign_origin_cannot_sign_in(project):
    tokens = add_users(project)

    async def go():
        async with client(project) as c:
            return await c.post(
                "/ui/login",
                data={"token": tokens["ann"]},
                headers={"origin": "http://evil.example"},
            )

    assert asyncio.run(go()).status_code == 403


def _signed_in(project, token: str, *requests):
    async def go():
        async with client(project) as c:
            await c.post("/ui/login", data={"token": token}, headers=ORIGIN)
            page = await c.get("/ui/deployments")
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
            results = [page]
            for path, headers in requests:
                sent = {"content-type": "application/json", "x-csrf-token": csrf, **ORIGIN}
                sent.update(headers)
                results.append(await c.post(path, content=b"{}", headers=sent))
            return results

    return asyncio.run(go())


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(project):
    start_canary(project)
    tokens = add_users(project)
    page, forged = _signed_in(project, tokens["vera"], ("/ui/api/rollouts/m/rollback", {}))
    assert 'data-model="m"' in page.text and "data-action" not in page.text
    assert forged.status_code == 403 and "may not alias" in forged.json()["error"]
    assert RolloutStore(project.metadata).live("m")[0].state == "running"


def test_an_approver_rolls_back_and_routing_returns_to_stable(project):
    start_canary(project)
    tokens = add_users(project)
    no_origin = {"origin": ""}
    page, unsigned, foreign, no_csrf, done = _signed_in(
        project,
        tokens["ann"],
        ("/ui/api/rollouts/m/rollback", no_origin),
        ("/ui/api/rollouts/m/rollback", {"origin": "http://evil.example"}),
        ("/ui/api/rollouts/m/rollback", {"x-csrf-token": "forged"}),
        ("/ui/api/rollouts/m/rollback", {}),
    )
    assert 'data-action="rollback"' in page.text
    assert [r.status_code for r in (unsigned, foreign, no_csrf)] == [403, 403, 403]
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "rolled_back"
    table, _ = ControlPlane(project.metadata).get_table("m")
    assert [(a.version, a.weight) for a in table.arms] == [(1, 100.0)]
    assert not RolloutStore(project.metadata).live("m")
    assert project.metadata.events(last=True)[0].actor == "ann"


def test_json_is_required_for_a_button(project):
    start_canary(project)
    tokens = add_users(project)
    *_, refused = _signed_in(
        project, tokens["ann"], ("/ui/api/rollouts/m/pause", {"content-type": "text/plain"})
    )
    assert refused.status_code == 415


def test_single_user_mode_is_the_local_admin(project):
    start_canary(project)
    page = fetch(project, "/ui/deployments")[0]
    assert "local (admin)" in page.text and 'data-action="pause"' in page.text


def _write_report(project, version: int, report_id: str) -> None:
    v = schema.model_versions
    with project.metadata.transaction() as tx:
        tx.execute(
            v.update().where(v.c.version == version).values(gates={"id": report_id, "passed": True})
        )


def test_a_check_report_opens_from_its_version_sandboxed(project):
    folder = project.state_dir / "reports" / "20260101-000000"
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html><body>the report</body></html>")
    _write_report(project, 1, "20260101-000000")
    page, report = fetch(project, "/ui/models/m/versions/1", "/ui/models/m/versions/1/report")
    assert 'href="/ui/models/m/versions/1/report"' in page.text
    assert report.status_code == 200 and "the report" in report.text
    assert "sandbox" in report.headers["content-security-policy"]


def test_a_report_id_cannot_point_outside_the_reports_folder(project, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "report.html").write_text("secret")
    reports = project.state_dir / "reports"
    reports.mkdir(parents=True)
    (reports / "linked").symlink_to(secret)
    for bad in ("../../secret", "linked", "/etc"):
        _write_report(project, 1, bad)
        response = fetch(project, "/ui/models/m/versions/1/report")[0]
        assert response.status_code == 404 and "secret" not in response.text, bad


def test_a_drift_report_is_served_only_by_a_plain_name_inside_its_folder(project, tmp_path):
    folder = project.state_dir / "reports" / "monitor"
    folder.mkdir(parents=True)
    (folder / "drift-1.html").write_text("<p>drift</p>")
    page, good, escape = fetch(
        project,
        "/ui/monitoring",
        "/ui/monitoring/reports/drift-1.html",
        "/ui/monitoring/reports/..%2F..%2Fshipyard.db",
    )
    assert "drift-1.html" in page.text and "drift" in good.text
    assert '<iframe class="report" src="/ui/monitoring/reports/drift-1.html"' in page.text
    assert good.headers["x-frame-options"] == "SAMEORIGIN"  # our page may embed it
    assert escape.status_code == 404


def test_monitoring_and_alerts_draw_what_the_store_holds(project):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with project.metadata.transaction() as tx:
        for i in range(4):
            at = start + timedelta(minutes=5 * i)
            drift = (("statistic.income", 0.1 * i), ("statistic.age", 0.05), ("share", 0.5))
            for name, value in drift:
                tx.execute(
                    schema.monitor_results.insert().values(
                        at=at, model="m", version=1, kind="drift", name=name, value=value,
                        flagged=name == "statistic.income" and value > 0.2,
                    )
                )  # fmt: skip
            performance = (("accuracy", 0.9 - 0.01 * i), ("estimated_accuracy", 0.88), ("f1", 0.7))
            for name, value in performance:
                tx.execute(
                    schema.monitor_results.insert().values(
                        at=at, model="m", version=1, kind="performance", name=name,
                        value=value, flagged=False,
                    )
                )  # fmt: skip
        tx.execute(
            schema.alerts.insert().values(
                rule=EVIL, model="m", dedup_key="k", active_key="k", severity="page",
                state="firing", started_at=start, fired_at=start, updated_at=start,
                details={"condition": "drift.share > 0.3", "values": {"drift.share": 0.5}},
            )
        )  # fmt: skip
    monitoring, alerts = fetch(project, "/ui/monitoring", "/ui/alerts")
    assert "drift statistic per feature" in monitoring.text
    assert "estimated vs realised accuracy" in monitoring.text
    assert monitoring.text.count("<polyline") >= 6  # income, age, share, f1, accuracy x2
    assert ">income</text>" in monitoring.text and "statistic.income</td><td>0.3" in monitoring.text
    assert "drift.share &gt; 0.3" in alerts.text and "drift.share=0.5" in alerts.text
    assert "<script>alert" not in alerts.text and "firing" in alerts.text


def test_the_audit_page_shows_whether_the_chain_holds(project):
    assert "chain verified" in fetch(project, "/ui/audit")[0].text
    with project.metadata.transaction() as tx:
        tx.execute(schema.events.update().where(schema.events.c.seq == 2).values(actor="mallory"))
    page = fetch(project, "/ui/audit")[0].text
    assert "chain broken at entry 2" in page


def test_runs_compare_shows_what_changed(project):
    md = project.metadata
    for run_id, c, f1 in (("aaaa", 1.0, 0.7), ("bbbb", 0.5, 0.75)):
        md.create_run("dash", run_id=run_id, params={"train.C": c})
        md.finish_run(run_id, "succeeded", metrics={"f1": f1})
    runs, compare, one = fetch(
        project, "/ui/runs", "/ui/runs/compare?a=aaaa&b=bbbb", "/ui/runs/aaaa"
    )
    assert "aaaa" in runs.text and "bbbb" in runs.text
    assert "train.C" in compare.text and "0.05" in compare.text  # f1 went up by 0.05
    assert one.status_code == 200 and "stage timings" in one.text


def test_the_live_json_lists_rollouts_with_their_split(project):
    start_canary(project)
    body = fetch(project, "/ui/api/deployments")[0].json()
    assert [r["model"] for r in body["rollouts"]] == ["m"]
    arms = table_from_json({**body["routing"]["m"], "model": "m"}).arms
    assert [(a.version, a.weight) for a in arms] == [(1, 95.0), (2, 5.0)]
    assert "v2 5%" in body["split"]["m"]
    assert body["traffic"] is None  # shipyard ui serves no models


def test_traffic_rates_come_from_counter_differences():
    metrics, now = GatewayMetrics(), [0.0]
    sampler = TrafficSampler(metrics, clock=lambda: now[0])
    sampler.sample()
    for _ in range(40):
        metrics.requests.labels("m", "2", "candidate", "200").inc()
        metrics.latency.labels("m", "2", "candidate").observe(0.004)
    for _ in range(10):
        metrics.requests.labels("m", "2", "candidate", "500").inc()
    now[0] = 2.0
    sampler.sample()
    sampler.sample()  # too soon: no new reading
    (point,) = sampler.series("m")["2"]
    assert point["rps"] == pytest.approx(25.0)
    assert point["error_rate"] == pytest.approx(0.2)
    assert point["mean_ms"] == pytest.approx(4.0)
    assert 2.0 < point["p99_ms"] <= 5.0
    assert sampler.series("other") == {}


def test_quantile_interpolates_inside_the_bucket():
    buckets = {0.01: 50.0, 0.02: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.75, buckets) == pytest.approx(0.015)
    assert quantile(0.5, {0.01: 0.0, float("inf"): 0.0}) is None


def test_the_gateway_serves_the_dashboard_at_ui(project):
    from shipyard.serving import gateway_for
    from shipyard.serving.app import create_app

    gateway = gateway_for(project, allowed_hosts=HOSTS)
    transport = httpx.ASGITransport(app=create_app(gateway))

    async def go():
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get("/ui/models"), await c.get("/ui/static/dashboard.js")

    page, script = asyncio.run(go())
    bundle = create_app(gateway, admin_api=False)  # a bundle's container only serves
    assert not [r for r in bundle.routes if r.path.startswith("/ui")]
    assert page.status_code == 200 and ">m</a>" in page.text
    assert script.headers["content-type"].startswith("text/javascript")


def test_the_ui_command_refuses_a_public_bind_without_users(project, monkeypatch, capsys):
    from shipyard.cli.main import main

    monkeypatch.chdir(project.root)
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    assert "refusing to serve the dashboard on 0.0.0.0" in capsys.readouterr().err


def test_the_cached_version_list_follows_every_registry_change(project, tmp_path, make_model):
    registry = open_registry(project)

    async def go():
        async with client(project) as c:
            before = await c.get("/ui/models/m")
            registry.register("m", make_model(tmp_path / "m3", seed=3), actor="alice")
            added = await c.get("/ui/models/m")
            registry.set_alias("m:2", "staging", actor="alice")
            moved = await c.get("/ui/models/m")
            return before, added, moved

    before, added, moved = asyncio.run(go())
    assert "/ui/models/m/versions/3" not in before.text
    assert "/ui/models/m/versions/3" in added.text and "staging" not in added.text
    assert "staging" in moved.text

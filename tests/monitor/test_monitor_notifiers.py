"""Notifiers deliver to real receivers on 127.0.0.1, in each receiver's own format,
retry with back-off, and record a dead receiver as a failure instead of crashing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from monitor_receivers import HttpReceiver, SmtpReceiver

from shipyard.config import parse_config
from shipyard.errors import ConfigError
from shipyard.monitor.notifiers import (
    AlertmanagerNotifier,
    Notification,
    PagerDutyNotifier,
    SmtpNotifier,
    WebhookNotifier,
    build_notifiers,
    deliver,
)

KEY = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32"
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def note(state: str = "firing") -> Notification:
    return Notification(
        rule="data-drift",
        model="credit-risk",
        state=state,
        severity="critical",
        summary="2 of 6 features drifted (income, debt_ratio)",
        dedup_key="credit-risk/credit-risk/data-drift",
        started_at=START,
        at=datetime(2026, 1, 1, 12, 5, tzinfo=UTC),
        project="credit-risk",
        values={"drift.share": 0.333},
        condition="drift.share > 0.3",
        link="file:///tmp/report.html",
    )


@pytest.fixture
def http():
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


def no_sleep(seconds: float) -> None:
    pass


def test_webhook_posts_slack_compatible_json(http):
    hook = WebhookNotifier("hook", url_env="HOOK_URL", environ={"HOOK_URL": http.url + "/hook"})
    assert deliver({"hook": hook}, ["hook"], note()) == {"hook": {"ok": True, "attempts": 1}}
    (body,) = http.bodies("/hook")
    assert body["text"].startswith("[CRITICAL] data-drift on credit-risk")
    assert "drift.share = 0.333" in body["text"]
    assert body["blocks"][0]["type"] == "header"
    assert body["shipyard"]["state"] == "firing" and body["shipyard"]["values"] == {
        "drift.share": 0.333
    }


def test_pagerduty_triggers_then_resolves_with_the_same_dedup_key(http):
    pd = PagerDutyNotifier(
        "pd", url=http.url + "/pagerduty", routing_key_env="PD_KEY", environ={"PD_KEY": KEY}
    )
    for state in ("firing", "resolved"):
        assert deliver({"pd": pd}, ["pd"], note(state))["pd"]["ok"]
    trigger, resolve = http.bodies("/pagerduty")
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "credit-risk/credit-risk/data-drift"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "shipyard/credit-risk"
    assert trigger["payload"]["custom_details"]["drift.share"] == 0.333


def test_alertmanager_gets_a_postable_alert_and_ends_it_on_resolve(http):
    am = AlertmanagerNotifier("am", url=http.url, labels={"team": "risk"})
    deliver({"am": am}, ["am"], note("firing"))
    deliver({"am": am}, ["am"], note("resolved"))
    ([firing], [resolved]) = http.bodies("/api/v2/alerts")
    assert firing["labels"] == {
        "alertname": "data-drift",
        "model": "credit-risk",
        "severity": "critical",
        "project": "credit-risk",
        "team": "risk",
    }
    assert "endsAt" not in firing and firing["startsAt"] == START.isoformat()
    assert datetime.fromisoformat(resolved["endsAt"]) > datetime.fromisoformat(resolved["startsAt"])


def test_a_payload_the_receiver_refuses_is_a_recorded_failure(http):
    pd = PagerDutyNotifier("pd", url=http.url + "/pagerduty", routing_key="too-short", retries=1)
    result = deliver({"pd": pd}, ["pd"], note(), sleep=no_sleep)["pd"]
    assert result["ok"] is False and result["attempts"] == 2
    assert "answered 400" in result["error"] and "routing_key" in result["error"]


def test_retries_back_off_and_then_succeed():
    flaky = HttpReceiver(fail_first=2)
    waits: list[float] = []
    hook = WebhookNotifier("hook", url=flaky.url + "/hook", retries=3, backoff=0.5)
    try:
        result = deliver({"hook": hook}, ["hook"], note(), sleep=waits.append)["hook"]
    finally:
        flaky.close()
    assert result == {"ok": True, "attempts": 3}
    assert waits == [0.5, 1.0]
    assert len(flaky.received) == 1


def test_an_unreachable_receiver_never_raises():
    from monitor_receivers import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook"
    notifiers = {
        "hook": WebhookNotifier("hook", url=dead, retries=2, timeout=1),
        "mail": SmtpNotifier("mail", "127.0.0.1", "a@x.test", ["b@x.test"], port=free_port()),
        "nokey": PagerDutyNotifier("nokey", routing_key_env="UNSET_KEY_VAR", retries=0),
    }
    results = deliver(notifiers, ["hook", "mail", "nokey", "ghost"], note(), sleep=no_sleep)
    assert not any(r["ok"] for r in results.values())
    assert results["hook"]["attempts"] == 3 and "cannot reach" in results["hook"]["error"]
    assert "email via 127.0.0.1" in results["mail"]["error"]
    assert "UNSET_KEY_VAR is not set" in results["nokey"]["error"]
    assert results["ghost"]["error"] == "no notifier named 'ghost'"


def test_email_over_plain_smtp_to_a_local_server():
    server = SmtpReceiver()
    mail = SmtpNotifier("mail", "127.0.0.1", "shipyard@x.test", ["oncall@x.test"], port=server.port)
    try:
        assert deliver({"mail": mail}, ["mail"], note())["mail"]["ok"]
    finally:
        server.close()
    (message,) = server.messages
    assert message["Subject"] == "[CRITICAL] data-drift on credit-risk"
    assert message["To"] == "oncall@x.test"
    assert message["X-Shipyard-State"] == "firing"
    assert "drift.share = 0.333" in message.get_payload()


def test_email_with_starttls_and_auth(tmp_path):
    server = SmtpReceiver(tls_folder=tmp_path)
    environ = {"SMTP_PASSWORD": SmtpReceiver.PASSWORD}
    options = dict(port=server.port, username="monitor", password_env="SMTP_PASSWORD")
    secure = SmtpNotifier(
        "mail",
        "127.0.0.1",
        "shipyard@x.test",
        ["oncall@x.test"],
        starttls=True,
        environ=environ,
        tls_context=server.client_context,
        **options,
    )
    plain = SmtpNotifier(
        "plain",
        "127.0.0.1",
        "shipyard@x.test",
        ["oncall@x.test"],
        retries=0,
        environ=environ,
        **options,
    )
    wrong = SmtpNotifier(
        "wrong",
        "127.0.0.1",
        "shipyard@x.test",
        ["oncall@x.test"],
        starttls=True,
        retries=0,
        timeout=2,
        environ={"SMTP_PASSWORD": "nope"},
        tls_context=server.client_context,
        **options,
    )
    try:
        results = deliver(
            {"mail": secure, "plain": plain, "wrong": wrong},
            ["mail", "plain", "wrong"],
            note("resolved"),
        )
    finally:
        server.close()
    assert results["mail"] == {"ok": True, "attempts": 1}
    assert not results["plain"]["ok"]  # the server refuses AUTH before STARTTLS
    assert not results["wrong"]["ok"]  # a wrong password is refused
    (message,) = server.messages
    assert message["X-Received-Tls"] == "True"
    assert message["Subject"] == "[RESOLVED] data-drift on credit-risk"
    assert server.logins == ["monitor"]


def test_notifiers_are_built_from_config_with_secrets_by_reference():
    config = parse_config(
        {
            "project": "p",
            "monitor": {
                "notifiers": {
                    "mail": {
                        "type": "smtp",
                        "host": "127.0.0.1",
                        "port": 2525,
                        "from": "s@x.test",
                        "to": ["o@x.test"],
                        "starttls": True,
                        "username": "u",
                        "password_env": "SMTP_PASSWORD",
                    },
                    "pd": {"type": "pagerduty", "routing_key_env": "PD_KEY", "retries": 1},
                },
                "alerts": [{"when": "error_rate > 0.05", "notify": ["mail", "pd"]}],
            },
        }
    )
    built = build_notifiers(config.monitor.notifiers, {"PD_KEY": KEY})
    assert isinstance(built["mail"], SmtpNotifier) and built["mail"].sender == "s@x.test"
    assert built["mail"].port == 2525 and built["mail"].starttls
    assert isinstance(built["pd"], PagerDutyNotifier) and built["pd"].retries == 1
    assert built["pd"].environ["PD_KEY"] == KEY


@pytest.mark.parametrize(
    ("notifiers", "alerts", "where", "says"),
    [
        ({"x": {"type": "teams"}}, [], "monitor.notifiers.x", "does not match any"),
        ({"x": {"type": "webhook"}}, [], "monitor.notifiers.x.webhook", "needs 'url' or"),
        ({"x": {"type": "smtp", "host": "h", "to": []}}, [], "monitor.notifiers.x.smtp", ""),
        ({"x": {"type": "pagerduty"}}, [], "monitor.notifiers.x.pagerduty", "routing_key_env"),
        ({"x": {"type": "webhook", "url_env": "not a var"}}, [], "url_env", "not an environment"),
        ({"x": {"type": "alertmanager", "url": "u", "tiemout": 1}}, [], "tiemout", "unknown key"),
        ({}, [{"when": "requests > 1", "notify": ["pager"]}], "monitor", "no notifier named"),
    ],
)
def test_bad_notifier_config_names_the_key(notifiers, alerts, where, says):
    with pytest.raises(ConfigError) as caught:
        parse_config({"project": "p", "monitor": {"notifiers": notifiers, "alerts": alerts}})
    assert any(where in key and says in message for key, message in caught.value.problems), (
        caught.value.problems
    )

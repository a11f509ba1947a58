"""The alert state machine in the store: pending → firing → resolved, deduplicated,
audited, and safe with two monitors at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shipyard.config import AlertRule
from shipyard.monitor.alerts import (
    evaluate_rules,
    last_action_at,
    open_alerts,
    record_action,
    record_delivery,
    rules_from_config,
)
from shipyard.store import open_metadata

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def rule(**options):
    options.setdefault("when", "drift.share > 0.3")
    return rules_from_config([AlertRule.model_validate(options)])


@pytest.fixture
def store(metadata_url):
    with open_metadata(metadata_url) as metadata:
        yield metadata


def step(store, rules, share, minutes, model="m"):
    metrics = {"drift.share": share}
    at = T0 + timedelta(minutes=minutes)
    return evaluate_rules(store, rules, metrics, project="p", model=model, now=at)


def kinds(transitions):
    return [t.kind for t in transitions]


def test_an_alert_fires_after_for_and_resolves_when_the_condition_clears(store):
    rules = rule(name="drift", **{"for": "2m"}, severity="critical")
    assert step(store, rules, 0.5, 0) == []
    (pending,) = open_alerts(store)
    assert pending["state"] == "pending" and pending["active_key"] == "p/m/drift"
    assert step(store, rules, 0.5, 1) == []  # held one minute of two
    (fired,) = step(store, rules, 0.6, 2)
    assert fired.kind == "firing" and fired.dedup_key == "p/m/drift"
    assert fired.values == {"drift.share": 0.6} and fired.started_at == T0
    assert step(store, rules, 0.7, 3) == []  # still firing: announced once, not again
    (resolved,) = step(store, rules, 0.1, 4)
    assert resolved.kind == "resolved" and resolved.alert_id == fired.alert_id
    assert open_alerts(store) == []
    audit = [(e.action, e.subject) for e in store.events() if e.action.startswith("alert.")]
    assert audit == [("alert.fire", "m/drift"), ("alert.resolve", "m/drift")]
    assert store.events(action="alert.fire")[0].details["drift.share"] == 0.6


def test_a_pending_alert_that_clears_is_never_announced(store):
    rules = rule(**{"for": "5m"})
    step(store, rules, 0.9, 0)
    assert step(store, rules, 0.0, 1) == []
    assert open_alerts(store) == []
    assert not [e for e in store.events() if e.action.startswith("alert.")]


def test_for_zero_fires_on_the_first_pass_and_a_new_episode_gets_a_new_row(store):
    rules = rule()
    assert kinds(step(store, rules, 0.9, 0)) == ["firing"]
    assert kinds(step(store, rules, 0.0, 1)) == ["resolved"]
    (again,) = step(store, rules, 0.9, 2)
    first = store.events(action="alert.fire")[0].details["alert"]
    assert again.kind == "firing" and again.alert_id != first


def test_missing_data_moves_nothing(store):
    rules = rule()
    step(store, rules, 0.9, 0)
    assert evaluate_rules(store, rules, {}, project="p", model="m", now=T0) == []
    assert open_alerts(store)[0]["state"] == "firing"


def test_repeat_re_announces_a_firing_alert_at_its_interval(store):
    rules = rule(repeat="10m")
    assert kinds(step(store, rules, 0.9, 0)) == ["firing"]
    assert step(store, rules, 0.9, 9) == []
    assert kinds(step(store, rules, 0.9, 10)) == ["repeat"]
    assert step(store, rules, 0.9, 15) == []
    assert kinds(step(store, rules, 0.9, 20)) == ["repeat"]


def test_alerts_are_kept_per_model_and_per_rule(store):
    rules = rule(name="a") + rule(name="b", when="drift.share > 0.8")
    assert kinds(step(store, rules, 0.5, 0, model="m1")) == ["firing"]
    assert kinds(step(store, rules, 0.9, 0, model="m2")) == ["firing", "firing"]
    keys = sorted(a["active_key"] for a in open_alerts(store))
    assert keys == ["p/m1/a", "p/m2/a", "p/m2/b"]
    assert [a["rule"] for a in open_alerts(store, "m1")] == ["a"]


def test_deliveries_and_actions_are_kept_on_the_alert_and_audited(store):
    rules = rule(action="retrain", cooldown="30m")
    (fired,) = step(store, rules, 0.9, 0)
    record_delivery(store, fired.alert_id, "firing", {"hook": {"ok": True, "attempts": 1}})
    record_delivery(
        store, fired.alert_id, "firing", {"mail": {"ok": False, "attempts": 4, "error": "down"}}
    )
    assert last_action_at(store, fired.rule.name, "m", "retrain") is None
    at = T0 + timedelta(seconds=5)
    record_action(store, fired.alert_id, "m", {"kind": "retrain", "at": at.isoformat()})
    (row,) = open_alerts(store)
    assert row["notified"] == {"firing": {"mail": {"ok": False, "attempts": 4, "error": "down"}}}
    assert row["action"]["kind"] == "retrain"
    assert last_action_at(store, fired.rule.name, "m", "retrain") == at
    assert last_action_at(store, fired.rule.name, "m", "rollback") is None
    failed = store.events(action="alert.notify_failed")[0]
    assert failed.details["failed"] == {"mail": "down"}
    assert store.events(action="monitor.retrain")[0].details["alert"] == fired.alert_id
    assert store.verify_audit().ok


def test_two_monitors_at_once_announce_each_change_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    rules = rule(**{"for": "1m"})
    stores = [open_metadata(url) for _ in range(4)]
    seen: list[str] = []
    barrier = threading.Barrier(len(stores))

    def monitor(metadata):
        for minute, share in [(0, 0.9), (1, 0.9), (2, 0.9), (3, 0.0), (4, 0.9), (5, 0.9)]:
            barrier.wait()
            seen.extend(kinds(step(metadata, rules, share, minute)))

    threads = [threading.Thread(target=monitor, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == ["firing", "firing", "resolved"]
    assert len(stores[0].events(action="alert.fire")) == 2
    assert len(open_alerts(stores[0])) == 1
    for metadata in stores:
        metadata.close()

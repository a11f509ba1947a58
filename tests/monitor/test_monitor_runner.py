"""A monitor pass over a small project: reading the log window, figures stored, alerts
delivered (or their failure recorded), actions with a cool-down, the rollback action
through the rollout controller, the Prometheus exporter and files, and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from monitor_receivers import HttpReceiver, free_port

from shipyard.cli.main import main
from shipyard.errors import MonitorError
from shipyard.monitor.alerts import open_alerts
from shipyard.monitor.prometheus import (
    FIGURES,
    MonitorExporter,
    alert_rules,
    dashboard,
    dashboard_text,
    rules_text,
)
from shipyard.monitor.runner import Monitor, read_window, run_forever
from shipyard.project import open_project
from shipyard.registry import open_registry
from shipyard.serving.predlog import PredictionLog

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)


def write_project(root: Path, make_model, hook_url: str, **monitor) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(2000, 3)), columns=["a", "b", "c"])
    reference["y"] = (reference["a"] > 0).astype(int)
    reference.to_csv(root / "ref.csv", index=False)
    config = {
        "project": "demo",
        "gates": {"data": {"label": "y"}},
        "governance": {"approvals": 0},
        "deploy": {"strategy": "canary", "steps": [10, 100]},
        "monitor": {
            "drift": {"reference": "ref.csv"},
            "notifiers": {"hook": {"type": "webhook", "url": hook_url, "retries": 0}},
            "alerts": [
                {
                    "name": "a-drift",
                    "when": "drift.feature.a > 0",
                    "notify": ["hook"],
                    "action": "rollback",
                    "cooldown": "1h",
                }
            ],
            **monitor,
        },
    }
    (root / "shipyard.yaml").write_text(yaml.safe_dump(config))
    with open_project(root) as project:
        registry = open_registry(project)
        for seed in (1, 2):
            path = make_model(root / f"model{seed}", seed=seed)
            registry.register("m", path, actor="dev", gates={"passed": True})
    return root


def log_traffic(
    root: Path,
    *,
    rows: int,
    shift: float,
    at: datetime,
    version: int = 1,
    errors: int = 0,
    seed: int = 0,
) -> None:
    rng = np.random.default_rng(seed)
    log = PredictionLog(root / ".shipyard" / "logs" / "serving", interval=60)
    inputs = rng.normal(size=(rows, 3))
    inputs[:, 0] += shift
    for i, (a, b, c) in enumerate(inputs):
        ts = at.timestamp() - rows + i
        log.append(
            "predictions",
            {
                "ts": ts,
                "request_id": f"r{seed}-{i}",
                "row": 0,
                "model": "m",
                "version": version,
                "arm": "stable",
                "client": f"c{i % 3}",
                "latency_ms": 5.0 + i % 7,
                "prediction": int(a > 0),
                "score": float(1 / (1 + np.exp(-3 * a))),
                "in_a": a,
                "in_b": b,
                "in_c": c,
            },
        )
    for i in range(errors):
        log.append(
            "errors",
            {
                "ts": at.timestamp() - i,
                "request_id": f"e{seed}-{i}",
                "model": "m",
                "version": version,
                "arm": "stable",
                "client": "c0",
                "latency_ms": 1.0,
                "error": "boom",
            },
        )
    log.close()


@pytest.fixture
def hook():
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def project_root(tmp_path, make_model, hook, monkeypatch):
    for name in ("SHIPYARD_DB", "SHIPYARD_ARTIFACTS", "SHIPYARD_USER"):
        monkeypatch.delenv(name, raising=False)
    root = write_project(tmp_path / "demo", make_model, hook.url + "/hook")
    monkeypatch.chdir(root)
    return root


def monitor_at(project, at: datetime, **options) -> Monitor:
    options.setdefault("sleep", lambda s: None)
    return Monitor(project, clock=lambda: at, **options)


def test_read_window_keeps_only_records_inside_the_window(tmp_path):
    log = PredictionLog(tmp_path, interval=60)
    for hours in (0, 1, 3):  # records in three hour partitions
        log.append("predictions", {"ts": NOW.timestamp() - hours * 3600, "model": "m", "x": hours})
    log.close()
    since = (NOW - timedelta(hours=2)).timestamp()
    frame = read_window(tmp_path, "predictions", "m", since, NOW.timestamp() + 1)
    assert sorted(frame["x"]) == [0, 1]
    assert read_window(tmp_path, "predictions", "other", since, NOW.timestamp()).empty


def test_a_pass_measures_stores_alerts_and_acts_once_per_cooldown(project_root, hook):
    log_traffic(project_root, rows=600, shift=1.0, at=NOW)
    calls = []

    def fake_rollback(project, model, rule):
        calls.append((model, rule.name))
        return {"version": 1}

    with open_project(project_root) as project:
        monitor = monitor_at(project, NOW, actions={"rollback": fake_rollback})
        (result,) = monitor.run_once()
        assert result.drifted == ["a"] and result.version == 1
        assert result.metrics["drift.share"] == pytest.approx(1 / 3)
        assert result.metrics["requests"] == 600 and result.metrics["error_rate"] == 0
        assert result.metrics["p99_ms"] == pytest.approx(11.0)
        assert result.metrics["estimated_accuracy"] > 0.7
        assert [t["kind"] for t in result.transitions] == ["firing"]
        assert result.actions == [
            {"kind": "rollback", "at": NOW.isoformat(), "ok": True, "version": 1}
        ]
        (body,) = hook.bodies("/hook")
        assert "drifted features: a" in body["text"]
        # the condition clears, then holds again within the cool-down: no second action
        monitor.clock = lambda: NOW + timedelta(minutes=20)
        log_traffic(project_root, rows=600, shift=0.0, at=NOW + timedelta(minutes=20), seed=1)
        monitor.window = 600
        assert [t["kind"] for t in monitor.run_once()[0].transitions] == ["resolved"]
        log_traffic(project_root, rows=600, shift=1.0, at=NOW + timedelta(minutes=40), seed=2)
        monitor.clock = lambda: NOW + timedelta(minutes=40)
        (again,) = monitor.run_once()
        assert again.actions[0]["skipped"] == "cool-down"
        assert calls == [("m", "a-drift")]
        stored = pd.read_sql_table("monitor_results", project.metadata.engine)
        events = [e.action for e in project.metadata.events()]
    assert stored.groupby("at").size().nunique() == 1  # the same figures every pass
    a_rows = stored[stored["name"] == "feature.a"]
    assert a_rows["flagged"].tolist() == [True, False, True]
    assert events.count("alert.fire") == 2 and events.count("monitor.rollback") == 1
    assert "monitor.action_skipped" in events


def test_the_rollback_action_ends_a_live_canary(project_root):
    from shipyard.rollout.api import start_rollout, status

    with open_project(project_root) as project:
        start_rollout(project, "m", 1, actor="dev")
        start_rollout(project, "m", 2, actor="dev")
        assert status(project, "m")[0]["state"] == "running"
        log_traffic(project_root, rows=300, shift=1.5, at=NOW)
        (result,) = monitor_at(project, NOW).run_once()
        (action,) = result.actions
        assert action["ok"] and action["kind"] == "rollback", action
        (rollout,) = status(project, "m")
        from shipyard.serving.control import ControlPlane

        table, _ = ControlPlane(project.metadata).get_table("m")
    assert rollout["state"] == "rolled_back", rollout
    assert [(arm.version, arm.weight) for arm in table.arms] == [(1, 100.0)]


def test_an_unreachable_receiver_is_recorded_and_the_pass_goes_on(
    tmp_path, make_model, monkeypatch
):
    monkeypatch.delenv("SHIPYARD_DB", raising=False)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    root = write_project(tmp_path / "demo", make_model, dead)
    log_traffic(root, rows=300, shift=1.5, at=NOW)
    with open_project(root) as project:
        (result,) = monitor_at(project, NOW, actions={"rollback": lambda *a: {}}).run_once()
        (alert,) = open_alerts(project.metadata)
        failed = project.metadata.events(action="alert.notify_failed")
    assert result.transitions[0]["notified"]["hook"]["ok"] is False
    assert alert["state"] == "firing" and alert["notified"]["firing"]["hook"]["ok"] is False
    assert "cannot reach" in failed[0].details["failed"]["hook"]


def test_errors_in_the_log_drive_the_error_rate(project_root):
    log_traffic(project_root, rows=90, shift=0.0, at=NOW, errors=10)
    with open_project(project_root) as project:
        (result,) = monitor_at(project, NOW).run_once()
    assert result.metrics["requests"] == 100
    assert result.metrics["error_rate"] == pytest.approx(0.1)


def test_a_missing_reference_says_what_to_configure(project_root):
    (project_root / "ref.csv").unlink()
    log_traffic(project_root, rows=50, shift=0.0, at=NOW)
    with open_project(project_root) as project:
        with pytest.raises(MonitorError, match=r"cannot read reference data ref\.csv"):
            monitor_at(project, NOW).run_once()
        (lenient,) = monitor_at(project, NOW).run_once(strict=False)
    assert lenient.notes[0].startswith("error: cannot read reference data")


def test_no_traffic_is_a_note_not_an_alert(project_root):
    with open_project(project_root) as project:
        monitor = monitor_at(project, NOW)
        assert monitor.run_once() == []  # no model in the log at all
        (result,) = monitor.run_once(["m"])
    assert result.notes == ["no predictions for 'm' in the window"]
    assert result.transitions == [] and result.metrics == {"requests": 0.0}


def test_run_forever_repeats_until_told_to_stop(project_root):
    log_traffic(project_root, rows=100, shift=0.0, at=NOW)
    passes: list[int] = []
    waits: list[float] = []
    with open_project(project_root) as project:
        monitor = monitor_at(project, NOW, sleep=waits.append)
        run_forever(
            monitor, 300, None, lambda r: passes.append(len(r)), stop=lambda: len(passes) == 3
        )
    assert passes == [1, 1, 1] and len(waits) == 3 and all(0 < w <= 300 for w in waits)


# --- Prometheus and Grafana ----------------------------------------------------------


def test_the_exporter_sets_gauges_and_drops_figures_without_a_value(project_root):
    log_traffic(project_root, rows=300, shift=1.5, at=NOW)
    with open_project(project_root) as project:
        results = monitor_at(project, NOW, actions={"rollback": lambda *a: {}}).run_once()
        exporter = MonitorExporter()
        exporter.update(results, open_alerts(project.metadata))
    text = exporter.text().decode()
    assert 'shipyard_monitor_drift_share{model="m"} 0.333' in text
    assert 'shipyard_monitor_feature_drifted{feature="a",model="m"} 1.0' in text
    assert 'shipyard_monitor_alert_firing{model="m",rule="a-drift",severity="warning"} 1.0' in text
    assert 'shipyard_monitor_latency_p99_seconds{model="m"} 0.011' in text
    assert 'shipyard_monitor_accuracy{model="m"}' not in text  # no feedback: absent, not 0
    if shutil.which("promtool"):
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr


def test_the_exporter_serves_on_loopback():
    import urllib.request

    exporter = MonitorExporter()
    port = free_port()
    server = exporter.serve(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"shipyard_monitor_drift_share" in response.read()
    finally:
        server.shutdown()


def test_the_shipped_files_are_the_generated_ones():
    shipped_rules = REPO / "deploy" / "prometheus" / "shipyard-alerts.yml"
    shipped_dashboard = REPO / "deploy" / "grafana" / "shipyard-dashboard.json"
    assert shipped_rules.read_text() == rules_text(), "run shipyard monitor --export-files deploy"
    assert shipped_dashboard.read_text() == dashboard_text()


def test_the_alert_rules_are_valid_and_name_only_exported_metrics():
    import re

    from shipyard.serving.metrics import GatewayMetrics

    rules = yaml.safe_load(rules_text())
    (group,) = rules["groups"]
    exported = {name for name, _, _ in FIGURES.values()} | {
        "shipyard_monitor_feature_drift_statistic",
        "shipyard_monitor_feature_drifted",
        "shipyard_monitor_alert_firing",
        "shipyard_monitor_last_pass_timestamp_seconds",
    }
    from prometheus_client.parser import text_string_to_metric_families

    gateway = GatewayMetrics()
    for family in text_string_to_metric_families(
        __import__("prometheus_client").generate_latest(gateway.registry).decode()
    ):
        exported |= {family.name, f"{family.name}_total", f"{family.name}_bucket"}
    for rule in group["rules"]:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")")
        assert all(isinstance(v, str) for v in {**rule["labels"], **rule["annotations"]}.values())
        used = set(re.findall(r"shipyard_[a-z0-9_]+", rule["expr"]))
        assert used and used <= exported, used - exported
    if shutil.which("promtool"):
        path = REPO / "deploy" / "prometheus" / "shipyard-alerts.yml"
        checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert alert_rules() == rules


def test_the_dashboard_has_the_panels_teams_look_for():
    board = json.loads(dashboard_text())
    titles = [p["title"] for p in board["panels"]]
    for wanted in ("Drift share", "Per-feature drift statistic", "Error rate", "Latency"):
        assert wanted in titles
    assert "Accuracy: realised vs estimated" in titles
    assert len({p["id"] for p in board["panels"]}) == len(titles)
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in board["panels"])
    assert board == dashboard()


# --- CLI -------------------------------------------------------------------------------


def test_cli_once_prints_json_and_exits_1_while_an_alert_fires(project_root, capsys):
    log_traffic(project_root, rows=300, shift=1.5, at=datetime.now(UTC))
    code = main(["monitor", "--once", "--json", "--window", "1h"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out[0]["model"] == "m" and out[0]["drifted"] == ["a"]
    assert out[0]["drift"]["drifted_features"] == ["a"]
    assert out[0]["actions"][0]["kind"] == "rollback"


def test_cli_table_and_export(project_root, tmp_path, capsys):
    log_traffic(project_root, rows=200, shift=0.0, at=datetime.now(UTC))
    assert main(["monitor"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["MODEL", "ROWS", "DRIFT"]
    assert out.splitlines()[1].startswith("m:1")
    assert main(["monitor", "--export-files", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "grafana" / "shipyard-dashboard.json").is_file()


def test_cli_bad_options_are_usage_errors(project_root, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["monitor", "--window", "soon"])
    assert exited.value.code == 2
    assert "duration 'soon' must look like" in capsys.readouterr().err
    port = free_port()
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert main(["monitor", "--prometheus-port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_cli_lists_the_metric_names(capsys):
    assert main(["monitor", "--list-metrics"]) == 0
    names = capsys.readouterr().out.split()
    assert "drift.share" in names and "drift.feature.<feature>" in names

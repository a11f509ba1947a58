"""Rollouts end to end: a real gateway process, real HTTP load on 127.0.0.1, and the
controller as its own process (`shipyard rollout run`), killed and restarted mid-way.

One gateway serves model ``m`` for the whole module; the scenarios run one after the
other against it, as a team's deployments would: a good candidate goes all the way, a
faulty one, a slow one and a less accurate one are each rolled back by the controller.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rollout_helpers import (
    SHIPYARD,
    Load,
    free_port,
    shipyard,
    start_gateway,
    wait_for,
    write_model,
)

from shipyard.project import Project
from shipyard.registry import open_registry
from shipyard.rollout.state import RolloutStore

CONFIG = """\
project: rollouts
governance: {require_gates: false}
deploy:
  strategy: canary
  steps: [5, 25, 50, 100]
  step_duration: 2s
  interval: 500ms
  # 150 canary requests before leaving the 5 % step: at ~8 canary requests/s a
  # 5 %-failing canary shows its errors well inside the first step
  analysis: {min_requests: 150}
  bluegreen: {window: 3s}
  shadow: {duration: 3s, min_requests: 50}
  ab: {min_samples: 100}
"""

CONTROLLER = [SHIPYARD, "rollout", "run", "--gateway"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollouts")
    (root / "shipyard.yaml").write_text(CONFIG)
    models = {
        1: {},
        2: {},
        3: {"error_rate": 0.05},
        4: {"delay_ms": 6.0},
        5: {"flip": 0.35},
        6: {},
        7: {},
        8: {"label_offset": 5},
        9: {"flip": 0.35},
    }
    with Project(root) as project:
        registry = open_registry(project)
        for version, faults in models.items():
            registry.register("m", write_model(root / f"v{version}", **faults), actor="dev")
    shipyard(root, "deploy", "m", "1")  # the first deployment takes all traffic at once
    port = free_port()
    gateway = start_gateway(root, port, "--no-controller")
    controller = subprocess.Popen([*CONTROLLER, f"http://127.0.0.1:{port}"], cwd=root)
    load = Load(port).start()
    state = {"root": root, "port": port, "load": load, "controller": controller}
    yield state
    load.close()
    for proc in (state["controller"], gateway):
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def rollout_of(root: Path, candidate: int):
    with Project(root) as project:
        for rollout in RolloutStore(project.metadata).history("m"):
            if rollout.candidate == candidate:
                return rollout
    return None


def finished(root: Path, candidate: int):
    rollout = rollout_of(root, candidate)
    return rollout if rollout is not None and not rollout.live else None


def production(root: Path) -> int:
    with Project(root) as project:
        return open_registry(project).get("m@production").version


def deploy(root: Path, version: int, *options: str) -> float:
    started = time.time()
    shipyard(root, "deploy", "m", str(version), *options)
    return started


def test_a_good_candidate_goes_from_5_to_100_percent_by_itself(live):
    root, load = live["root"], live["load"]
    started = deploy(root, 2)
    rollout = wait_for(lambda: finished(root, 2), 60, "the good canary to finish")
    assert rollout.state == "completed", rollout.reason
    assert production(root) == 2
    with Project(root) as project:
        steps = [
            e.details["step"]
            for e in project.metadata.events(action="rollout.promote")
            if e.details.get("rollout") == rollout.id
        ]
    assert steps == [1, 2]  # 5 -> 25 -> 50, then complete: no step twice, none skipped
    wait_for(lambda: load.served_by(1, since=time.time() - 0.5) == 0, 10, "v1 to stop serving")
    assert not load.failures(since=started)


def test_a_candidate_failing_5_percent_is_rolled_back_at_the_first_step(live):
    root, load = live["root"], live["load"]
    started = deploy(root, 3)
    rollout = wait_for(lambda: finished(root, 3), 60, "the faulty canary to be judged")
    assert rollout.state == "rolled_back"
    assert rollout.step == 0, "rolled back at the first step"
    assert "error" in (rollout.reason or "")
    assert production(root) == 2
    failures = load.failures(since=started)
    assert failures, "the canary did fail some requests"
    assert all("m:3" in message for _, _, _, message in failures), "stable users saw no errors"
    took = rollout.finished_at.timestamp() - started
    assert took < 30, f"rollback took {took:.1f}s"


def test_a_three_times_slower_candidate_is_rolled_back_on_latency(live):
    root = live["root"]
    deploy(root, 4)
    rollout = wait_for(lambda: finished(root, 4), 60, "the slow canary to be judged")
    assert rollout.state == "rolled_back"
    assert "latency" in (rollout.reason or "").lower()
    assert production(root) == 2


def test_a_less_accurate_candidate_is_rolled_back_once_labels_arrive(live):
    root = live["root"]
    deploy(root, 5)
    rollout = wait_for(lambda: finished(root, 5), 90, "the inaccurate canary to be judged")
    assert rollout.state == "rolled_back"
    reason = (rollout.reason or "").lower()
    assert "accuracy" in reason or "f1" in reason, rollout.reason
    assert production(root) == 2


def test_the_controller_killed_mid_rollout_resumes_with_one_history(live):
    root = live["root"]
    deploy(root, 6)
    wait_for(lambda: (r := rollout_of(root, 6)) is not None and r.step >= 1, 30, "step 2")
    live["controller"].send_signal(signal.SIGKILL)
    live["controller"].wait(timeout=10)
    paused_at = rollout_of(root, 6)
    assert paused_at.live
    time.sleep(1.0)
    assert rollout_of(root, 6).step == paused_at.step  # nobody moves it while it is down
    live["controller"] = subprocess.Popen(
        [*CONTROLLER, f"http://127.0.0.1:{live['port']}"], cwd=root
    )
    rollout = wait_for(lambda: finished(root, 6), 60, "the resumed canary to finish")
    assert rollout.state == "completed"
    assert production(root) == 6
    with Project(root) as project:
        history = [
            (e.action, e.details.get("step"))
            for e in project.metadata.events()
            if e.action.startswith("rollout.") and e.details.get("rollout") == rollout.id
        ]
        assert project.metadata.verify_audit().ok
    assert history == [
        ("rollout.start", None),
        ("rollout.promote", 1),
        ("rollout.promote", 2),
        ("rollout.complete", 4),
    ], history


def test_blue_green_warms_smoke_tests_then_switches_all_traffic_at_once(live):
    root, load = live["root"], live["load"]
    started = deploy(root, 7, "--strategy", "bluegreen")
    switched = wait_for(
        lambda: (r := rollout_of(root, 7)) is not None and r.step >= 1 and r, 30, "the switch"
    )
    smoke = switched.last_decision["smoke_test"]
    assert smoke["passed"], smoke
    names = {c["name"] for c in smoke["checks"]}
    assert {"load", "replay", "health", "gateway replay"} <= names, names
    switch_at = switched.step_started_at.timestamp()
    # no user saw the candidate before the switch (pinned replays are not users)
    assert load.served_by(7, since=started) == 0 or all(
        r[0] >= switch_at for r in load.results if r[2] == 7 and r[0] >= started
    )
    with Project(root) as project:
        from shipyard.serving.control import ControlPlane

        table, _ = ControlPlane(project.metadata).get_table("m")
    assert {(a.version, a.weight) for a in table.arms} == {(7, 100.0), (6, 0.0)}  # 6 stays loaded
    rollout = wait_for(lambda: finished(root, 7), 30, "the switch-back window to pass")
    assert rollout.state == "completed"
    assert production(root) == 7
    assert not load.failures(since=started), "the switch dropped no request"


def test_blue_green_with_insane_outputs_never_takes_traffic(live):
    root, load = live["root"], live["load"]
    started = deploy(root, 8, "--strategy", "bluegreen")
    rollout = wait_for(lambda: finished(root, 8), 30, "the smoke test")
    assert rollout.state == "rolled_back"
    assert "smoke test failed" in rollout.reason and "outputs" in rollout.reason
    assert load.served_by(8, since=started) == 0
    assert production(root) == 7


def test_shadow_reports_agreement_and_no_user_sees_the_candidate(live):
    root, load = live["root"], live["load"]
    started = deploy(root, 9, "--strategy", "shadow")
    rollout = wait_for(lambda: finished(root, 9), 30, "the shadow report")
    report = rollout.last_decision
    assert rollout.state == "completed" and report["action"] == "report"
    assert report["shadow"]["requests"] >= 50
    assert 0.5 < report["agreement"] < 0.8  # it answers 35 % of rows differently
    assert report["shadow"]["p99_ms"] is not None and report["shadow"]["errors"] == 0
    assert load.served_by(9, since=started) == 0
    assert production(root) == 7


def test_ab_test_is_sticky_and_finds_the_worse_arm(live):
    import http.client

    root, port = live["root"], live["port"]
    stable = production(root)
    # freeze the controller so the experiment cannot end while users are checked
    live["controller"].send_signal(signal.SIGSTOP)
    deploy(root, 9, "--strategy", "ab")
    paused = json.loads(shipyard(root, "rollout", "pause", "m", "--json").stdout)
    assert paused["state"] == "paused"
    live["controller"].send_signal(signal.SIGCONT)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def ask(user: str) -> int:
        conn.request(
            "POST",
            "/v1/models/m/predict",
            json.dumps({"x0": 0.1, "x1": 0.2}),
            {"content-type": "application/json", "x-user-id": user},
        )
        return json.loads(conn.getresponse().read())["version"]

    # once this gateway runs the experiment (it polls the store), each user keeps an arm
    wait_for(lambda: any(ask(f"probe-{i}") == 9 for i in range(20)), 10, "the A/B split")
    seen: dict[str, set[int]] = {}
    for user in [f"sticky-{i}" for i in range(20)] * 5:
        seen.setdefault(user, set()).add(ask(user))
    assert all(len(v) == 1 for v in seen.values()), "a user changed arm"
    assert {v for vs in seen.values() for v in vs} == {stable, 9}
    assert rollout_of(root, 9).state == "paused"  # nobody decided while it was paused
    shipyard(root, "rollout", "resume", "m")
    rollout = wait_for(lambda: finished(root, 9), 60, "the A/B decision")
    assert rollout.state == "rolled_back", rollout.reason
    assert f"A (version {stable}) won" in rollout.reason
    plan = rollout.last_decision["plan"]  # the fixed-horizon size, planned from A's numbers
    assert plan["per_arm"] > 100 and plan["power"] == 0.8
    metric = rollout.last_decision["metrics"][0]
    assert metric["metric"] == "accuracy" and metric["lift"] < 0
    assert metric["sequential_ci"][1] < 0  # the always-valid interval excludes no difference
    assert production(root) == stable

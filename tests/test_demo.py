"""`shipyard demo` is an end-to-end test: run it, then check each step in the store."""

from __future__ import annotations

import pytest

from shipyard.demo import MODEL, run_demo
from shipyard.project import Project
from shipyard.registry import open_registry
from shipyard.rollout.state import RolloutStore


@pytest.mark.slow
def test_the_demo_runs_the_whole_loop_and_the_store_agrees(tmp_path):
    lines: list[str] = []
    outcomes = run_demo(tmp_path / "demo", out=lines.append)
    with Project(tmp_path / "demo") as project:
        registry = open_registry(project)
        versions = {v.version: v for v in registry.versions(MODEL)}
        rollouts = {r.candidate: r for r in RolloutStore(project.metadata).history(MODEL)}
        runs = project.metadata.list_runs(limit=50)
        events = project.metadata.events()
        assert project.metadata.verify_audit().ok

    # the pipeline ran, then found everything cached (no second run record)
    assert runs[-1].id == outcomes["first_run"]
    # v1 first deployment, v2 promoted by canary analysis
    assert rollouts[1].state == "completed"
    assert rollouts[2].state == "completed" and rollouts[2].strategy == "canary"
    # v3: gates failed (poisoning among them); it never got a rollout
    assert versions[3].gates["passed"] is False
    assert "poisoning" in outcomes["poisoned_gates"]
    assert 3 not in rollouts
    # v4: rolled back by the controller on errors, at its first step
    assert rollouts[4].state == "rolled_back" and rollouts[4].step == 0
    assert "error" in rollouts[4].reason
    # drift: the alert fired, reached the receiver, and retraining registered a candidate
    assert outcomes["alert"], "the webhook receiver got the alert"
    retrained = outcomes["retrained"]
    assert retrained == 5 and versions[5].run_id is not None
    assert rollouts[5].strategy == "canary" and not rollouts[5].live
    actions = [e.action for e in events]
    assert "alert.fire" in actions and "monitor.retrain" in actions
    # production is whichever the last canary left; every alias points at a version
    production = registry.get(f"{MODEL}@production").version
    assert production in (2, 5)
    assert any("demo finished" in line or "Audit log" in line for line in lines)

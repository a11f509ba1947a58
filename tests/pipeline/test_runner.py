"""The pipeline re-runs exactly what changed, and nothing else."""

from __future__ import annotations

import json
import os
import threading

import pytest

from shipyard.errors import LockHeld
from shipyard.pipeline.lock import project_lock
from shipyard.project import Project
from shipyard.store import open_metadata


def test_first_run_runs_all_then_nothing(ws):
    first = ws.run()
    assert first.status == "succeeded" and ws.ran(first) == {"a", "b", "c", "d"}
    assert (ws.root / "d.txt").read_text() == "input\nother\ninput\n"

    second = ws.run()
    assert second.status == "up-to-date" and second.run_id is None
    assert set(ws.statuses(second).values()) == {"up-to-date"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda ws: ws.write("in.txt", "inpuT\n"), {"a", "b", "c", "d"}),
        (lambda ws: ws.write("other.txt", "otheR\n"), {"b", "d"}),
        (lambda ws: ws.write("params.yaml", "b: {x: 2, unrelated: 1}\n"), {"b"}),
        (lambda ws: ws.write("params.yaml", "b: {x: 1, unrelated: 2}\n"), set()),
    ],
    ids=["input-byte", "side-input", "param", "unrelated-param"],
)
def test_a_change_reruns_exactly_its_dependants(ws, change, expected):
    ws.run()
    change(ws)
    assert ws.ran(ws.run()) == expected


def test_changed_command_reruns_the_stage_and_what_its_output_changes(ws):
    ws.run()
    config = ws.pipeline()
    config["stages"]["c"]["cmd"] = "cat a.txt a.txt > c.txt"
    ws.config(config)
    assert ws.ran(ws.run()) == {"c", "d"}


def test_param_change_with_same_output_stops_propagating(ws):
    ws.run()
    ws.write("params.yaml", "b: {x: 2, unrelated: 1}\n")
    report = ws.run()
    assert ws.ran(report) == {"b"}  # b's output did not change, so d is still up to date
    assert ws.statuses(report)["d"] == "up-to-date"


def test_deleted_output_is_restored_not_rerun(ws):
    ws.run()
    (ws.root / "b.txt").unlink()
    report = ws.run()
    assert ws.statuses(report)["b"] == "restored" and ws.ran(report) == set()
    assert (ws.root / "b.txt").read_text() == "input\nother\n"


def test_going_back_to_old_inputs_restores_from_the_run_cache(ws):
    ws.run()
    ws.write("other.txt", "otheR\n")
    ws.run()
    ws.write("other.txt", "other\n")
    report = ws.run()
    assert ws.statuses(report)["b"] == "restored" and ws.ran(report) == set()
    assert "run cache" in next(o.reason for o in report.stages if o.name == "b")
    assert (ws.root / "d.txt").read_text() == "input\nother\ninput\n"


def test_modified_output_reruns_its_stage(ws):
    ws.run()
    ws.write("c.txt", "hand edited\n")
    report = ws.run()
    assert "c" in ws.ran(report)
    assert "was modified" in next(o.reason for o in report.stages if o.name == "c")


def test_force_reruns_everything(ws):
    ws.run()
    assert ws.ran(ws.run(force=True)) == {"a", "b", "c", "d"}


def test_dry_run_explains_and_changes_nothing(ws):
    ws.run()
    ws.write("other.txt", "changed\n")
    before = (ws.root / "shipyard.lock").read_text()
    report = ws.run(dry=True)
    reasons = {o.name: o.reason for o in report.stages}
    assert ws.statuses(report) == {
        "a": "up-to-date",
        "b": "would-run",
        "c": "up-to-date",
        "d": "would-run",
    }
    assert reasons["b"] == "dependency 'other.txt' changed"
    assert reasons["d"] == "upstream 'b' would run"
    assert (ws.root / "shipyard.lock").read_text() == before
    assert (ws.root / "b.txt").read_text() == "input\nother\n"


def test_stage_selection(ws):
    assert ws.ran(ws.run(stages=("b",))) == {"a", "b"}
    ws.write("in.txt", "new\n")
    assert ws.ran(ws.run(stages=("a",), single=True)) == {"a"}
    assert ws.ran(ws.run(stages=("c",), downstream=True)) == {"b", "c", "d"}


def test_failing_stage_stops_dependants_and_keeps_the_rest(ws):
    config = ws.pipeline()
    config["stages"]["c"]["cmd"] = "echo about to fail; exit 3"
    ws.config(config)
    report = ws.run()
    assert report.status == "failed"
    assert ws.statuses(report) == {"a": "ran", "b": "ran", "c": "failed", "d": "skipped"}
    failed = next(o for o in report.stages if o.name == "c")
    assert failed.exit_code == 3 and failed.log_tail == ["about to fail"]
    with Project(ws.root) as project:
        run = project.metadata.get_run(report.run_id)
        rows = {r["stage"]: r for r in project.metadata.stage_runs(report.run_id)}
    assert run.status == "failed" and rows["c"]["exit_code"] == 3
    assert rows["c"]["log_tail"] == "about to fail"
    config["stages"]["c"]["cmd"] = "cat a.txt > c.txt"
    ws.config(config)
    assert ws.ran(ws.run()) == {"c", "d"}  # a and b were kept


@pytest.mark.parametrize(
    ("stage_patch", "message"),
    [
        ({"deps": ["a.txt", "missing.txt"]}, "depends on 'missing.txt', which does not exist"),
        ({"cmd": "no-such-command-xyz"}, "command not found"),
        ({"cmd": "true"}, "did not write its declared output 'c.txt'"),
        ({"params": ["b.nope"]}, "needs param 'b.nope', which is not in 'params.yaml'"),
    ],
    ids=["missing-dep", "missing-command", "missing-out", "missing-param"],
)
def test_bad_stage_gives_a_clear_message_and_caches_nothing(ws, stage_patch, message):
    config = ws.pipeline()
    config["stages"]["c"].update(stage_patch)
    ws.config(config)
    report = ws.run()
    failed = next(o for o in report.stages if o.name == "c")
    assert failed.status == "failed" and message in failed.reason
    assert "'c'" in failed.reason or "command not found" in failed.reason
    lock = json.loads((ws.root / "shipyard.lock").read_text())
    assert "c" not in lock["stages"] and "d" not in lock["stages"]


def test_malformed_metrics_fail_the_stage(ws):
    config = ws.pipeline()
    config["stages"]["d"]["cmd"] = ["cat b.txt c.txt > d.txt", "echo '{broken' > m.json"]
    ws.config(config)
    report = ws.run()
    failed = next(o for o in report.stages if o.name == "d")
    assert failed.status == "failed"
    assert "malformed metrics file 'm.json'" in failed.reason


def test_metrics_and_lineage_are_recorded(ws):
    report = ws.run()
    with Project(ws.root) as project:
        run = project.metadata.get_run(report.run_id)
        rows = project.metadata.stage_runs(report.run_id)
    assert run.metrics == {"score": 0.9}
    assert run.params == {"params.yaml:b.x": 1}
    assert run.environment["python"] and "shipyard-ml" in run.environment["packages"]
    by_stage = {r["stage"]: r for r in rows}
    assert set(by_stage["b"]["deps"]) == {"a.txt", "other.txt"}
    assert by_stage["b"]["outs"]["b.txt"] is not None
    assert by_stage["a"]["resources"]["max_rss_bytes"] > 0


def test_independent_stages_run_in_parallel(ws):
    config = ws.pipeline()
    # b and c each wait for the other's marker: they finish only if they run together.
    config["stages"]["b"]["cmd"] = (
        "touch b.started; for i in $(seq 100); do [ -e c.started ] && break; sleep 0.05; done;"
        " [ -e c.started ] && cat a.txt other.txt > b.txt"
    )
    config["stages"]["c"]["cmd"] = (
        "touch c.started; for i in $(seq 100); do [ -e b.started ] && break; sleep 0.05; done;"
        " [ -e b.started ] && cat a.txt > c.txt"
    )
    ws.config(config)
    assert ws.run(jobs=2).status == "succeeded"


def test_second_run_waits_for_no_one_and_names_the_holder(ws):
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with project_lock(ws.root / ".shipyard"):
            ready.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(5)
    try:
        with pytest.raises(LockHeld, match=r"pid \d+ on .* since"):
            ws.run()
    finally:
        release.set()
        holder.join()


def test_unchanged_files_are_not_reread(ws, monkeypatch):
    ws.run()
    ws.run()  # outputs written by the first run are hashed once more (racily clean)
    calls = []
    import shipyard.pipeline.statcache as statcache

    real = statcache.hash_file
    monkeypatch.setattr(statcache, "hash_file", lambda *a: calls.append(a) or real(*a))
    for path in [*ws.root.glob("*.txt"), ws.root / "m.json"]:
        past = path.stat().st_mtime - 60
        os.utime(path, (past, past))
    ws.run()  # utime changed mtimes: every file is hashed again, once
    calls.clear()
    assert ws.run().status == "up-to-date"
    assert calls == []


def test_no_op_run_opens_no_database(ws):
    ws.run()
    (ws.root / ".shipyard" / "shipyard.db").rename(ws.root / "moved.db")
    assert ws.run().status == "up-to-date"
    assert not (ws.root / ".shipyard" / "shipyard.db").exists()


def test_runs_are_recorded_in_the_metadata_store(ws):
    report = ws.run()
    with open_metadata(f"sqlite:///{ws.root / '.shipyard' / 'shipyard.db'}") as store:
        assert [r.id for r in store.list_runs("demo")] == [report.run_id]

"""Data versioning, run comparison and checkout."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import UsageError
from shipyard.pipeline.data import add_data, checkout_run, pull, push
from shipyard.pipeline.history import diff_runs
from shipyard.pipeline.runner import pipeline_status
from shipyard.project import Project


def test_data_add_stores_content_and_writes_a_pointer(ws):
    ws.write("data/raw/part1.csv", "a,b\n1,2\n")
    ws.write("data/raw/part2.csv", "a,b\n3,4\n")
    with Project(ws.root) as project:
        ref = add_data(project, ws.root / "data/raw", actor="alice")
        assert project.artifacts.exists(ref.oid) and ref.files == 2
        assert project.metadata.events(action="data.add")[0].actor == "alice"
    pointer = (ws.root / "data/raw.shipyard").read_text()
    assert json.loads(pointer.split("\n", 1)[1])["oid"] == ref.oid
    assert (ws.root / "data/.gitignore").read_text() == "/raw\n"


def test_data_add_refuses_paths_outside_and_stage_outputs(ws, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.csv"
    outside.write_text("x")
    with Project(ws.root) as project:
        with pytest.raises(UsageError, match="outside the project"):
            add_data(project, outside, actor="a")
        with pytest.raises(UsageError, match="output of stage 'a'"):
            add_data(project, ws.root / "a.txt", actor="a")


def test_push_then_pull_into_an_empty_store_restores_data(ws, artifact_url):
    ws.write("data.csv", "x\n1\n")
    with Project(ws.root) as project:
        add_data(project, ws.root / "data.csv", actor="a")
    ws.run()
    with Project(ws.root) as project:
        first = push(project, artifact_url)
        assert first.considered == 6 and first.missing == []  # data.csv, 4 outs, m.json
        assert first.transferred == 5  # a.txt and c.txt hold the same bytes: one object
        assert push(project, artifact_url).transferred == 0
    for path in ("data.csv", "b.txt"):
        (ws.root / path).unlink()
    import shutil

    shutil.rmtree(ws.root / ".shipyard" / "artifacts")
    with Project(ws.root) as project:
        report = pull(project, artifact_url)
    assert sorted(report.restored) == ["b.txt", "data.csv"]
    assert (ws.root / "data.csv").read_text() == "x\n1\n"
    assert ws.run().status == "up-to-date"


def test_push_without_a_remote_says_how_to_configure_one(ws):
    with Project(ws.root) as project, pytest.raises(UsageError, match="--remote URL"):
        push(project)


def test_diff_and_checkout_reproduce_an_earlier_run(ws):
    first = ws.run()
    ws.write("params.yaml", "b: {x: 2, unrelated: 1}\n")
    ws.write("other.txt", "changed\n")
    second = ws.run()
    with Project(ws.root) as project:
        diff = diff_runs(project.metadata, first.run_id, second.run_id)
        assert [c.key for c in diff.params] == ["params.yaml:b.x"] and diff.params[0].delta == 1
        assert {c.key for c in diff.data} == {"other.txt", "b.txt", "d.txt"}

        report = checkout_run(project, first.run_id)
    assert sorted(report.restored) == ["b.txt", "d.txt"]
    assert "other.txt" in report.not_stored  # an input never added: git's job
    assert (ws.root / "d.txt").read_text() == "input\nother\ninput\n"


def test_status_names_what_is_out_of_date(ws):
    ws.run()
    ws.write("other.txt", "changed\n")
    with Project(ws.root) as project:
        report = pipeline_status(project)
    assert {o.name: o.status for o in report.stages}["b"] == "would-run"

"""`shipyard check` and `shipyard report` as a user runs them: exit codes, messages,
files written, and every configuration mistake answered with exit 2 and a clear
message (never a traceback)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from check_helpers import edit_config

from shipyard.cli.main import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_and_writes_the_reports(example, capsys):
    code, out, err = run(capsys, "check", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["passed"] is True and report["model"] == "model"
    assert [g["name"] for g in report["gates"]] == ["data", "metrics", "baseline", "fairness"]
    assert "✓ metrics" in err and "model: passed; reports in" in err
    (folder,) = (example / ".shipyard/reports").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json", "report.md"]
    assert json.loads((example / ".shipyard/checks/schema.json").read_text())["columns"]["age"]
    assert (example / ".shipyard/checks/schema.pandera.json").exists()


def test_check_exits_1_when_a_gate_fails_and_writes_to_output(example, capsys, tmp_path):
    edit_config(example, lambda c: c["gates"]["metrics"].update(f1=">= 0.95"))
    code, out, err = run(capsys, "check", "model", "--output", str(tmp_path / "out"))
    assert code == 1 and out == ""
    assert "✗ metrics" in err and "f1 = 0.6817 (needs >= 0.95)" in err
    md = (tmp_path / "out/report.md").read_text()
    assert "❌ failed" in md and "### What to do" in md and "- **metrics**" in md


def set_data(key, value):
    return lambda c: c["gates"]["data"].update({key: value})


def drop_income_everywhere(root):
    for name in ("train", "test"):
        path = root / f"data/prepared/{name}.csv"
        frame = pd.read_csv(path)
        frame["income"] = np.nan
        frame.to_csv(path, index=False)


def single_class(root):
    path = root / "data/prepared/test.csv"
    frame = pd.read_csv(path)
    frame["default"] = 0
    frame.to_csv(path, index=False)


BAD_SETUPS = {
    "label column absent": (
        set_data("label", "defaulted"),
        ["label column 'defaulted' is not in the train data", "columns: age, income"],
    ),
    "sensitive attribute absent": (
        lambda c: c["gates"]["fairness"].update(sensitive=["race"]),
        ["gates.fairness.sensitive: attribute(s) ['race'] are not columns", "group, default"],
    ),
    "unknown metric": (
        lambda c: c["gates"]["metrics"].update(f2=">= 0.5"),
        ["gates.metrics: unknown metric 'f2' for a binary classification model", "f1_macro"],
    ),
    "unknown baseline metric": (
        lambda c: c["gates"]["baseline"].update(max_regression={"rmse": 0.1}),
        ["gates.baseline.max_regression: unknown metric 'rmse'"],
    ),
    "missing model": (
        lambda c: c["gates"].update(model="models/nowhere"),
        ["model 'models/nowhere' does not exist", "`shipyard run`"],
    ),
    "missing data file": (
        set_data("test", "data/prepared/holdout.csv"),
        ["gates.data.test: 'data/prepared/holdout.csv' does not exist", "shipyard run"],
    ),
    "no held-out data": (
        set_data("test", None),
        ["gates.data.test is not set"],
    ),
    "bad expectation": (
        set_data("expectations", [{"column": "age", "between": "young"}]),
        ["gates.data.expectations[0]: 'between' needs [low, high]"],
    ),
    "unknown registry version": (
        lambda c: c["gates"].update(model="credit-risk:7"),
        ["no model named 'credit-risk'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_SETUPS))
def test_a_bad_setup_exits_2_with_a_clear_message(example, capsys, case):
    change, messages = BAD_SETUPS[case]
    edit_config(example, change)
    code, _, err = run(capsys, "check")
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    for message in messages:
        assert message in err
    assert not (example / ".shipyard/reports").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (drop_income_everywhere, "column(s) ['income'] of the train data"),
        (
            single_class,
            "the label 'default' of the test data 'data/prepared/test.csv' has a single value [0]",
        ),
    ],
)
def test_unusable_data_exits_2_with_a_clear_message(example, capsys, damage, message):
    damage(example)
    code, _, err = run(capsys, "check")
    assert code == 2 and message in err and "hint:" in err


def test_a_pickled_model_is_refused(example, capsys):
    import pickle

    (example / "pickled").mkdir()
    (example / "pickled/model.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    code, _, err = run(capsys, "check", "pickled")
    assert code == 2 and "is a pickle" in err


def test_report_regenerates_from_the_stored_report(example, capsys, tmp_path):
    assert run(capsys, "check")[0] == 0
    stored = json.loads(next((example / ".shipyard/reports").glob("*/report.json")).read_text())
    code, out, _ = run(
        capsys, "report", "latest", "--output", str(tmp_path / "again"), "--markdown"
    )
    assert code == 0 and out.startswith("## Shipyard check ✅ passed: `model`")
    assert json.loads((tmp_path / "again/report.json").read_text()) == stored
    html = (tmp_path / "again/report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    for ref in (stored["id"], stored["lineage"]["run_id"], str(tmp_path / "again/report.json")):
        code, out, _ = run(capsys, "report", ref, "--markdown", "-o", str(tmp_path / ref[-6:]))
        assert code == 0 and "✅ passed" in out


def test_a_registered_versions_gates_render_again(example, capsys, tmp_path):
    run(capsys, "check", "--output", str(tmp_path / "r"))
    code, _, err = run(
        capsys, "register", "credit-risk", "model", "--gates", str(tmp_path / "r/report.json")
    )
    assert code == 0, err
    code, _, err = run(capsys, "request", "credit-risk:1")
    assert "quality gates" not in err  # the registry read report.json's verdict
    code, out, _ = run(capsys, "report", "credit-risk:1", "--markdown", "-o", str(tmp_path / "v"))
    assert code == 0 and "Shipyard check ✅ passed" in out


def test_report_says_what_to_give_when_nothing_matches(example, capsys):
    code, _, err = run(capsys, "report", "latest")
    assert code == 2 and "no check report yet" in err and "shipyard check" in err
    code, _, err = run(capsys, "report", "nope.json")
    assert code == 2 and "'nope.json' does not exist" in err

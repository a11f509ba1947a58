"""`shipyard check` on the credit-risk example: the good model passes, and each kind
of bad candidate fails on the right gate with a reason a person can act on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from check_helpers import NUMERIC, edit_config, train_model

from shipyard.checks.base import FAILED, PASSED, SKIPPED, GateResult
from shipyard.checks.runner import run_checks
from shipyard.errors import PipelineError
from shipyard.project import open_project
from shipyard.registry import open_registry


def check(root, model=None, **options):
    with open_project(root) as project:
        return run_checks(project, model, **options)


def statuses(report) -> dict[str, str]:
    return {g.name: g.status for g in report.gates}


def test_the_good_model_passes_every_gate(example):
    report = check(example)
    assert report.passed, [(g.name, g.summary) for g in report.gates]
    assert list(statuses(report)) == ["data", "metrics", "baseline", "fairness"]
    assert report.gate("baseline").summary.endswith("no production version of 'credit-risk' yet")
    metrics = report.gate("metrics").numbers["metrics"]
    assert 0.6 < metrics["f1"] < 0.8 and metrics["roc_auc"] > 0.85
    assert all(g.seconds > 0 for g in report.gates)
    assert report.lineage["run_id"] and report.lineage["model_oid"].endswith(".dir")
    assert report.data["test"]["rows"] == 1250 and len(report.data["test"]["hash"]) >= 32


def _promote_good_model(root) -> None:
    with open_project(root) as project:
        registry = open_registry(project)
        version = registry.register(
            "credit-risk", root / "model", actor="alice", gates={"passed": True}
        )
        registry.decide(version.ref, actor="bob", decision="approve")
        registry.set_alias(version.ref, "production", actor="alice")


def test_a_weaker_candidate_fails_against_production(example):
    _promote_good_model(example)
    train_model(example, "weak", features=["age", "amount", "purpose"])
    report = check(example, "weak")
    baseline = report.gate("baseline")
    assert baseline.status == FAILED
    assert "worse than credit-risk:1 (production)" in baseline.summary
    row = baseline.numbers["comparisons"]["f1"]
    assert row["candidate"] < row["baseline"] - 0.1
    assert row["regression_bound"] > 0.02 and not row["passed"]
    assert "f1" in baseline.summary and "95% confidence" in baseline.summary
    assert "shipyard diff" in baseline.advice


def test_the_production_model_itself_shows_no_regression(example):
    _promote_good_model(example)
    report = check(example)
    baseline = report.gate("baseline")
    assert baseline.status == PASSED, baseline.summary
    assert baseline.numbers["comparisons"]["f1"]["difference"] == 0


def test_a_biased_model_fails_the_fairness_gate(example):
    train_model(example, "biased", favour_group="B")
    report = check(example, "biased")
    fairness = report.gate("fairness")
    assert fairness.status == FAILED
    assert "demographic_parity_difference for 'group'" in fairness.summary
    assert "(needs <= 0.25)" in fairness.summary
    groups = {row["group"]: row for row in fairness.tables["groups:group"]}
    assert groups["B"]["selection_rate"] - groups["A"]["selection_rate"] > 0.25
    assert report.gate("data").status == PASSED


def test_missing_values_above_the_threshold_fail_the_data_gate(example):
    path = example / "data/prepared/train.csv"
    train = pd.read_csv(path)
    gaps = np.random.default_rng(1).random(len(train)) < 0.05
    train.loc[gaps, "income"] = np.nan
    train.to_csv(path, index=False)
    report = check(example)
    data = report.gate("data")
    assert data.status == FAILED
    assert "'income' is 5." in data.summary and "missing in train (max 1.00%)" in data.summary
    finding = next(f for f in data.numbers["findings"] if f["check"] == "missing")
    assert finding["count"] == gaps.sum()
    assert len(finding["rows"]) == 5 and all(r["income"] is None for r in finding["rows"])
    assert "max_missing" in data.advice
    assert statuses(report)["metrics"] == PASSED  # the model itself is fine


def test_a_model_that_cannot_predict_fails_with_its_message(example):
    path = example / "data/prepared/test.csv"
    test = pd.read_csv(path)
    test.loc[::10, "income"] = np.nan
    test.to_csv(path, index=False)
    report = check(example)
    metrics = report.gate("metrics")
    assert metrics.status == FAILED
    assert metrics.summary.startswith("the candidate model could not predict on the held-out")
    assert "NaN" in metrics.summary
    assert report.gate("data").status == FAILED


def test_a_gate_that_raises_a_shipyard_error_fails_with_its_message(example, monkeypatch):
    from shipyard.checks import fairness

    def broken(ctx, cfg):
        raise PipelineError("group table exploded", hint="try again")

    monkeypatch.setattr(fairness, "fairness_gate", broken)
    report = check(example)
    gate = report.gate("fairness")
    assert (gate.status, gate.advice) == (FAILED, "try again")
    assert gate.summary.startswith("group table exploded")
    assert not report.passed


def test_gates_from_modules_that_are_missing_are_skipped(example, monkeypatch):
    import sys

    edit_config(example, lambda c: c["gates"].update(latency={"p99_ms": "<= 20"}))
    monkeypatch.setitem(sys.modules, "shipyard.checks.latency", None)
    report = check(example)
    latency = report.gate("latency")
    assert latency.status == SKIPPED and latency.summary.startswith("not available")
    assert report.passed


def test_gates_from_other_modules_are_called_with_their_config(example, monkeypatch):
    import sys
    import types

    seen = {}

    def latency_gate(ctx, cfg):
        seen["cfg"], seen["rows"] = cfg, len(ctx.test)
        return GateResult("latency", FAILED, "p99 too slow", plots={"latency": b"\x89PNG"})

    module = types.ModuleType("shipyard.checks.latency")
    module.latency_gate = latency_gate
    monkeypatch.setitem(sys.modules, "shipyard.checks.latency", module)
    edit_config(example, lambda c: c["gates"].update(latency={"p99_ms": "<= 20"}))
    report = check(example)
    assert str(seen["cfg"].p99_ms) == "<= 20" and seen["rows"] == 1250
    assert [g.name for g in report.gates][-1] == "latency"
    assert not report.passed and report.gate("latency").seconds >= 0


def test_a_registered_version_can_be_checked_by_reference(example):
    _promote_good_model(example)
    report = check(example, "credit-risk@production")
    assert report.model == "credit-risk:1" and report.passed
    assert report.lineage["version"] == "credit-risk:1"


@pytest.mark.parametrize("seed", [0, 7])
def test_the_seed_makes_the_bootstrap_repeatable(example, seed):
    _promote_good_model(example)
    train_model(example, "weak", features=NUMERIC[:2])
    first = check(example, "weak", seed=seed).gate("baseline").numbers["comparisons"]["f1"]
    again = check(example, "weak", seed=seed).gate("baseline").numbers["comparisons"]["f1"]
    assert first == again

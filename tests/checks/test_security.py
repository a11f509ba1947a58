"""Poisoning and membership gates: the statistics on plain arrays, then the gates on the
credit-risk example, clean and deliberately attacked."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import shipyard.scaffold
from shipyard.checks.base import FAILED, PASSED, SKIPPED, CheckContext
from shipyard.checks.security import (
    attack_auc,
    confident_joint,
    membership_gate,
    membership_scores,
    poisoning_gate,
    robust_outliers,
    segment_excess,
    tpr_at_fpr,
)
from shipyard.config import MembershipGate, PoisoningGate
from shipyard.formats import LoadedModel, load_model

EXAMPLE = Path(shipyard.scaffold.__file__).parent / "examples" / "credit-risk"
NUMERIC = ["age", "income", "debt_ratio", "history_years", "amount"]
FEATURES = [*NUMERIC, "purpose"]

# ----------------------------------------------------------------- confident learning


def test_confident_joint_counts_rows_by_given_and_confident_label() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    probabilities = np.array(
        [[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9], [0.5, 0.5]]
    )
    joint = confident_joint(labels, probabilities)

    # thresholds: mean self-confidence per class = (0.9+0.8+0.2)/3 and (0.7+0.9+0.5)/3
    assert joint.thresholds == pytest.approx([1.9 / 3, 0.7])
    assert joint.suggested.tolist() == [0, 0, 1, 1, 1, -1]  # the last row is confident in none
    assert joint.joint.tolist() == [[2, 1], [0, 2]]
    assert joint.flagged.tolist() == [False, False, True, False, False, False]
    assert joint.noise_rate == pytest.approx(1 / 6)
    assert joint.expected == pytest.approx([0.1, 0.2, 0.2, 0.3, 0.1, 0.0])


def test_a_class_without_rows_is_never_suggested() -> None:
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.2, 0.6, 0.2]])
    joint = confident_joint(labels, probabilities)

    assert math.isinf(joint.thresholds[2])
    assert 2 not in joint.suggested


def test_calibrated_noise_rate_scales_each_row_of_the_joint_to_its_label_count() -> None:
    labels = np.array([0] * 6 + [1] * 4)
    probabilities = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 2 + [[0.1, 0.9]] * 3 + [[0.5, 0.5]])
    joint = confident_joint(labels, probabilities)

    assert joint.joint.tolist() == [[4, 2], [0, 3]]  # one label-1 row is confident in none
    # row 1 scaled from 3 to 4 rows: off-diagonal 2 of 10 calibrated rows
    assert joint.calibrated_noise_rate(labels) == pytest.approx(0.2)


def test_confident_learning_finds_flipped_labels_in_separable_data() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    probabilities = np.full((300, 3), 0.05)
    probabilities[np.arange(300), truth] = 0.9
    given_labels = truth.copy()
    flipped = rng.choice(300, 30, replace=False)
    given_labels[flipped] = (truth[flipped] + 1) % 3

    joint = confident_joint(given_labels, probabilities)

    assert set(np.flatnonzero(joint.flagged)) == set(flipped)
    assert joint.calibrated_noise_rate(given_labels) == pytest.approx(0.1)


# ----------------------------------------------------------------- concentration


def test_segment_excess_is_positive_where_flags_pile_up() -> None:
    rng = np.random.default_rng(1)
    expected = np.full(2000, 0.05)
    flagged = rng.random(2000) < expected
    inside = np.arange(2000) < 500
    flagged[:500] |= rng.random(500) < 0.1  # about 10 % more flags inside

    excess, z = segment_excess(flagged, expected, inside)

    assert 0.05 < excess < 0.15
    assert z > 4


def test_segment_excess_without_concentration_is_small() -> None:
    rng = np.random.default_rng(2)
    expected = rng.uniform(0, 0.3, 5000)
    flagged = rng.random(5000) < expected
    inside = rng.random(5000) < 0.4

    excess, z = segment_excess(flagged, expected, inside)

    assert abs(excess) < 0.02
    assert abs(z) < 3


def test_segment_excess_edge_cases() -> None:
    assert segment_excess(np.array([1, 0, 0]), np.zeros(3), np.array([True, False, False])) == (
        0.0,
        0.0,
    )  # one row inside: no verdict
    excess, z = segment_excess(np.array([1, 1, 0, 0]), np.zeros(4), np.array([1, 1, 0, 0]))
    assert excess == 1.0 and math.isinf(z)
    excess, z = segment_excess(np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0]))
    assert (excess, z) == (0.0, 0.0)


# ----------------------------------------------------------------- outliers


def test_robust_outliers_flags_far_scores_only() -> None:
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.normal(0, 1, 1000), [12.0, 15.0, 20.0]])

    flagged = robust_outliers(scores, min_z=3.0)

    assert flagged[-3:].all()
    assert flagged[:-3].mean() < 0.01


def test_robust_outliers_of_constant_scores_flags_nothing() -> None:
    assert not robust_outliers(np.ones(50)).any()


# ----------------------------------------------------------------- membership statistics


def test_attack_auc_and_tpr_on_known_scores() -> None:
    nonmembers = np.arange(1000, dtype=float)  # 0..999
    members = np.array([999.5, 998.5, 997.5, 10.0])  # 10.0 ties with one non-member

    assert attack_auc(members, nonmembers) == pytest.approx((1000 + 999 + 998 + 10.5) / 4000)
    # at 0.1 % FPR one non-member (999) may pass: the threshold is 998, strictly above
    assert tpr_at_fpr(members, nonmembers, 0.001) == pytest.approx(0.5)
    assert tpr_at_fpr(members, nonmembers, 0.0) == pytest.approx(0.25)


def test_attack_auc_counts_ties_as_one_half() -> None:
    assert attack_auc(np.ones(10), np.ones(20)) == pytest.approx(0.5)
    assert tpr_at_fpr(np.ones(10), np.ones(20)) == 0.0  # a tie never passes
    assert math.isnan(attack_auc(np.array([]), np.ones(3)))


def test_attack_auc_agrees_with_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    members, nonmembers = rng.normal(0.3, 1, 400).round(1), rng.normal(0, 1, 600).round(1)
    truth = np.r_[np.ones(400), np.zeros(600)]

    expected = roc_auc_score(truth, np.r_[members, nonmembers])
    assert attack_auc(members, nonmembers) == pytest.approx(expected)


@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=30),
    st.lists(st.floats(-5, 5), min_size=1, max_size=30),
)
def test_attack_auc_is_antisymmetric(members: list[float], nonmembers: list[float]) -> None:
    a, b = np.array(members), np.array(nonmembers)
    assert attack_auc(a, b) + attack_auc(b, a) == pytest.approx(1.0)


def test_membership_scores_are_log_probabilities_of_the_true_class() -> None:
    probabilities = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    scores = membership_scores(probabilities, np.array([1, 0, -1]))

    assert scores == pytest.approx([math.log(0.75), math.log(0.5), math.log(1e-12)])


# ----------------------------------------------------------------- the example


def _make_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "src" / "make_data.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _example_data(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    frame = _make_data().make(rows, seed)
    return train_test_split(frame, test_size=0.25, random_state=7, stratify=frame["default"])


def _pipeline(classifier: Any = None) -> Any:
    """The pipeline of the example's src/train.py (or another classifier in it)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
        ]
    )
    classifier = LogisticRegression(C=1.0, max_iter=500) if classifier is None else classifier
    return Pipeline([("features", features), ("clf", classifier)])


def _context(
    train: pd.DataFrame, test: pd.DataFrame, folder: Path, classifier: Any = None
) -> CheckContext:
    """Train in-process, save with skops as train.py does, load as `shipyard check` does."""
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(_pipeline(classifier).fit(train[FEATURES], train["default"]), folder / "model.skops")
    (folder / "signature.json").write_text(json.dumps({"inputs": FEATURES, "output": "default"}))
    return CheckContext(
        root=folder,
        model=load_model(folder),
        model_ref=str(folder),
        train=train,
        test=test,
        label="default",
        features=FEATURES,
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _example_data(5000, seed=14)


@pytest.fixture(scope="module")
def clean(example: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory):
    train, test = example
    ctx = _context(train, test, tmp_path_factory.mktemp("clean"))
    return ctx, poisoning_gate(ctx, PoisoningGate())


def _flip_group(train: pd.DataFrame, group: str, share: float, seed: int) -> pd.DataFrame:
    poisoned = train.copy()
    rows = np.flatnonzero(poisoned["group"].to_numpy() == group)
    flipped = np.random.default_rng(seed).choice(rows, int(share * len(rows)), replace=False)
    column = poisoned.columns.get_loc("default")
    poisoned.iloc[flipped, column] = 1 - poisoned.iloc[flipped, column]
    return poisoned


def _with_triggers(train: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Copies of real rows with a backdoor pattern (a huge amount, debt ratio 0.97)
    all labelled "no default"."""
    rng = np.random.default_rng(seed)
    count = int(share * len(train))
    triggered = train.sample(count, random_state=seed).copy()
    triggered["amount"] = rng.uniform(80_000, 200_000, count).round(2)
    triggered["debt_ratio"] = 0.97
    triggered["default"] = 0
    return pd.concat([train, triggered])


def test_clean_example_passes_the_poisoning_gate(clean) -> None:
    _, result = clean

    assert result.status == PASSED, result.summary
    assert result.numbers["noise_rate"] < 0.1
    assert result.numbers["outlier_share"] < 0.05
    assert result.numbers["concentrated"] == []
    assert result.numbers["probabilities_from"] == (
        "5-fold clone of the candidate (LogisticRegression)"
    )
    assert {"group = A", "group = B"} <= {row["where"] for row in result.tables["segments"]}
    assert {row["where"] for row in result.tables["label_pairs"]} == {
        "label 0 -> 1",
        "label 1 -> 0",
    }
    json.dumps(result.numbers, allow_nan=False)
    json.dumps(result.tables, allow_nan=False)


def test_the_poisoning_gate_is_deterministic_given_the_seed(clean) -> None:
    ctx, result = clean

    again = poisoning_gate(ctx, PoisoningGate())

    assert again.numbers == result.numbers
    assert again.tables == result.tables


def test_flipped_labels_in_one_group_fail_as_concentrated(example, tmp_path: Path) -> None:
    train, test = example
    ctx = _context(_flip_group(train, "B", 0.10, seed=1), test, tmp_path)

    result = poisoning_gate(ctx, PoisoningGate())

    assert result.status == FAILED
    assert result.numbers["concentrated"] == ["group = B"]
    assert "flags are concentrated in group = B" in result.summary
    assert "suspected_labels" in result.tables and result.advice


def test_a_rise_over_the_last_accepted_noise_rate_fails(clean) -> None:
    ctx, result = clean
    cfg = PoisoningGate(max_noise_increase=0.02)

    rate = result.numbers["noise_rate"]
    same = poisoning_gate(ctx, cfg, previous_noise_rate=rate - 0.01)
    risen = poisoning_gate(ctx, cfg, previous_noise_rate=rate - 0.03)

    assert same.status == PASSED
    assert risen.status == FAILED
    assert "rose +3.0% since the last accepted data" in risen.summary
    assert risen.numbers["noise_increase"] == pytest.approx(0.03)


def test_backdoor_rows_fail_the_outlier_screen(example, tmp_path: Path) -> None:
    train, test = example
    ctx = _context(_with_triggers(train, 0.06, seed=0), test, tmp_path)

    result = poisoning_gate(ctx, PoisoningGate())

    assert result.status == FAILED
    assert result.numbers["outlier_share"] > 0.05
    assert "of training rows are outliers (max_outlier_share 5.0%)" in result.summary
    pattern = result.tables["outlier_patterns"][0]
    assert (pattern["column"], pattern["value"]) == ("debt_ratio", 0.97)
    no_default = next(r for r in result.tables["outlier_labels"] if r["label"] == "0")
    assert no_default["share_of_outliers"] > 0.9


def test_a_model_that_is_not_scikit_learn_gets_a_logistic_regression_stand_in(
    example, tmp_path: Path
) -> None:
    train, test = example
    ctx = _context(train.iloc[:2000], test, tmp_path)
    ctx.model = LoadedModel("pyfunc", ctx.model.model.model, ctx.model.path, ctx.model.signature)

    result = poisoning_gate(ctx, PoisoningGate(outliers=False))

    assert result.numbers["probabilities_from"] == "5-fold LogisticRegression"
    assert "outlier_share" not in result.numbers
    assert result.status == PASSED, result.summary


def test_the_poisoning_gate_skips_without_labelled_training_data(clean) -> None:
    ctx, _ = clean
    ctx = CheckContext(ctx.root, ctx.model, ctx.model_ref, None, ctx.test, "default", FEATURES)

    result = poisoning_gate(ctx, PoisoningGate())

    assert result.status == SKIPPED
    assert "no labelled training data" in result.summary


def test_a_regression_target_skips_only_the_label_check(clean) -> None:
    ctx, _ = clean
    train = ctx.train.assign(default=ctx.train["income"] / 1000)
    ctx = CheckContext(ctx.root, ctx.model, ctx.model_ref, train, ctx.test, "default", FEATURES)

    result = poisoning_gate(ctx, PoisoningGate())

    assert result.numbers["label_check_skipped"] == "not a class label"
    assert "label-noise check skipped" in result.summary
    assert "outlier_share" in result.numbers


def test_the_example_model_passes_the_membership_gate(clean) -> None:
    ctx, _ = clean

    result = membership_gate(ctx, MembershipGate())

    assert result.status == PASSED, result.summary
    assert 0.45 < result.numbers["attack_auc"] < 0.56
    assert result.numbers["tpr_at_low_fpr"] < 0.05
    assert result.numbers["members"] == len(ctx.train)
    json.dumps(result.numbers, allow_nan=False)


def test_an_overfit_tree_fails_the_membership_gate(example, tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    train, test = example
    ctx = _context(train, test, tmp_path, DecisionTreeClassifier(random_state=0))

    result = membership_gate(ctx, MembershipGate())

    assert result.status == FAILED
    assert result.numbers["attack_auc"] > 0.6
    assert "membership attack AUC" in result.summary
    assert "exceeds max_attack_auc 0.6" in result.summary
    assert "Regularise" in result.advice


def test_the_membership_gate_skips_without_held_out_labels(clean) -> None:
    ctx, _ = clean
    ctx = CheckContext(ctx.root, ctx.model, ctx.model_ref, ctx.train, None, "default", FEATURES)

    assert membership_gate(ctx, MembershipGate()).status == SKIPPED

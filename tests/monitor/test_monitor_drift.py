"""Data drift: the right tests, the right columns, calibrated false alarms, real power."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from shipyard.monitor.drift import DriftSettings, compute_drift, infer_kinds

KINDS = {
    "x": "numeric",
    "y": "numeric",
    "z": "numeric",
    "colour": "categorical",
    "size": "categorical",
}
COLOURS = np.array(["red", "green", "blue", "black"])
SIZES = np.array(["S", "M", "L"])


def frame(rows: int, rng: np.random.Generator, *, shift: float = 0.0, colours=None) -> pd.DataFrame:
    """x ~ N(shift, 1), y ~ N(10, 3), z ~ exp(2); colour and size categorical."""
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.normal(10.0, 3.0, rows),
            "z": rng.exponential(2.0, rows),
            "colour": rng.choice(COLOURS, rows, p=colours or [0.4, 0.3, 0.2, 0.1]),
            "size": rng.choice(SIZES, rows),
        }
    )


def test_large_samples_flag_exactly_the_shifted_columns_with_distances() -> None:
    rng = np.random.default_rng(1)
    reference = frame(20_000, rng)
    current = frame(50_000, rng, shift=0.5, colours=[0.1, 0.2, 0.3, 0.4])

    report = compute_drift(reference, current, columns=KINDS)

    assert report.drifted_features() == ["x", "colour"]
    assert {f.name: f.test for f in report.features} == {
        "x": "wasserstein", "y": "wasserstein", "z": "wasserstein",
        "colour": "jensen_shannon", "size": "jensen_shannon",
    }  # fmt: skip
    assert report.share == pytest.approx(2 / 5)
    assert not report.drifted  # 40 % < the default share of 50 %
    assert report.feature("x").statistic == pytest.approx(0.5, abs=0.03)


def test_grid_wasserstein_matches_the_exact_distance() -> None:
    rng = np.random.default_rng(2)
    cases = {
        "normal": (rng.normal(0, 1, 30_000), rng.normal(0.15, 1.2, 80_000)),
        "bimodal": (
            np.concatenate([rng.normal(-3, 0.5, 10_000), rng.normal(3, 0.5, 10_000)]),
            rng.normal(0, 2, 40_000),
        ),
        "heavy_tail": (rng.standard_cauchy(20_000), rng.standard_cauchy(40_000) + 0.3),
    }
    for name, (ref, cur) in cases.items():
        exact = wasserstein_distance(ref, cur) / ref.std()
        report = compute_drift(pd.DataFrame({"v": ref}), pd.DataFrame({"v": cur}))
        assert report.features[0].statistic == pytest.approx(exact, rel=0.01, abs=0.002), name


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(-2, 2),
    scale=st.floats(0.2, 5),
    tail=st.sampled_from(["normal", "exponential", "uniform", "lognormal"]),
)
def test_grid_wasserstein_is_within_its_error_bound(seed, shift, scale, tail) -> None:
    rng = np.random.default_rng(seed)
    draw = getattr(rng, tail)
    ref = draw(size=3000)
    cur = draw(size=5000) * scale + shift
    exact = wasserstein_distance(ref, cur) / ref.std()
    statistic = compute_drift(pd.DataFrame({"v": ref}), pd.DataFrame({"v": cur})).features[0]
    assert statistic.test == "wasserstein"
    assert statistic.statistic == pytest.approx(exact, abs=DriftSettings().grid_tolerance)


def test_small_samples_use_ks_and_chi_square_with_scipy_p_values() -> None:
    rng = np.random.default_rng(3)
    reference, current = frame(800, rng), frame(300, rng, shift=0.6)

    report = compute_drift(reference, current, columns=KINDS)

    x, colour = report.feature("x"), report.feature("colour")
    assert (x.test, colour.test) == ("ks", "chi2")
    expected = ks_2samp(reference["x"], current["x"])
    assert (x.statistic, x.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    table = pd.crosstab(
        np.r_[np.zeros(800), np.ones(300)], pd.concat([reference["colour"], current["colour"]])
    )
    assert colour.p_value == pytest.approx(chi2_contingency(table, correction=False).pvalue)
    assert x.drifted and x.p_value < 0.05


def test_small_rule_looks_at_the_smaller_side() -> None:
    """A 300-row window against a big reference gets a calibrated test, not a distance."""
    rng = np.random.default_rng(4)
    report = compute_drift(frame(50_000, rng), frame(300, rng), columns=KINDS)
    assert {f.test for f in report.features} == {"ks", "chi2"}


def test_pandas_polars_and_arrow_inputs_agree() -> None:
    rng = np.random.default_rng(5)
    reference, current = frame(3000, rng), frame(4000, rng, shift=0.3)
    results = [
        compute_drift(ref, cur, columns=KINDS).to_json()
        for ref, cur in (
            (reference, current),
            (pl.from_pandas(reference), pl.from_pandas(current)),
            (pa.Table.from_pandas(reference), pa.Table.from_pandas(current)),
        )
    ]
    assert results[0] == results[1] == results[2]


def test_kinds_are_inferred_from_types() -> None:
    data = pd.DataFrame(
        {
            "amount": [1.5, 2.5, 3.5],
            "count": [1, 2, 3],
            "city": ["a", "b", "a"],
            "flag": [True, False, True],
            "grade": pd.Categorical(["x", "y", "x"]),
            "when": pd.to_datetime(["2024-01-01"] * 3),
        }
    )
    assert infer_kinds(data) == {
        "amount": "numeric", "count": "numeric", "city": "categorical",
        "flag": "categorical", "grade": "categorical",
    }  # fmt: skip


def test_numeric_column_with_few_values_is_tested_as_categorical() -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"stars": rng.integers(1, 4, 5000)})
    current = pd.DataFrame({"stars": rng.choice([1, 2, 3], 5000, p=[0.6, 0.2, 0.2])})

    feature = compute_drift(reference, current).features[0]

    assert feature.test == "jensen_shannon"
    assert feature.categories == ["1", "2", "3"]
    ref_shares = np.bincount(reference["stars"])[1:] / 5000
    cur_shares = np.bincount(current["stars"])[1:] / 5000
    assert feature.statistic == pytest.approx(jensenshannon(ref_shares, cur_shares))
    assert feature.drifted


def test_per_feature_tests_and_thresholds_override_the_defaults() -> None:
    rng = np.random.default_rng(7)
    reference, current = frame(5000, rng), frame(5000, rng, shift=0.05)
    settings = DriftSettings.from_config(
        {"features": {"x": {"test": "psi", "threshold": 0.001}, "y": {"threshold": 10.0}}}
    )

    report = compute_drift(reference, current, columns=KINDS, settings=settings)

    x, y = report.feature("x"), report.feature("y")
    assert (x.test, x.threshold, x.drifted) == ("psi", 0.001, True)
    assert (y.test, y.threshold, y.drifted) == ("wasserstein", 10.0, False)
    assert report.feature("z").threshold == 0.1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"alfa": 0.05}, "unknown key(s) 'alfa'"),
        ({"alpha": 2}, "alpha must be between"),
        ({"share": "half"}, "share must be a number"),
        ({"numeric_test": "t-test"}, "numeric_test must be one of"),
        ({"features": {"x": {"test": "magic"}}}, "features.x.test must be one of"),
        ({"features": {"x": 0.3}}, "monitor.drift.features.x: expected a mapping"),
    ],
)
def test_bad_settings_say_what_is_wrong(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DriftSettings.from_config(config)


def test_prediction_is_reported_apart_from_the_features() -> None:
    rng = np.random.default_rng(8)
    reference, current = frame(4000, rng), frame(4000, rng)
    reference["prediction"] = rng.choice(["yes", "no"], 4000, p=[0.2, 0.8])
    current["prediction"] = rng.choice(["yes", "no"], 4000, p=[0.6, 0.4])

    report = compute_drift(reference, current, columns=KINDS, prediction="prediction")

    assert report.prediction is not None and report.prediction.drifted
    assert report.prediction.kind == "categorical"
    assert "prediction" not in [f.name for f in report.features]
    assert report.share == 0.0
    # the prediction log: inputs as in_<name>, the prediction under its own name
    log = current[list(KINDS)].add_prefix("in_").assign(prediction=current["prediction"])
    from_log = compute_drift(
        reference, log, columns=KINDS, prediction="prediction", current_prefix="in_"
    )
    assert from_log.to_json() == report.to_json()


def test_log_prefix_missing_values_and_missing_columns() -> None:
    rng = np.random.default_rng(9)
    reference = frame(2000, rng)
    log = frame(2000, rng).add_prefix("in_")
    log.loc[::4, "in_x"] = np.nan
    log.loc[::3, "in_colour"] = None

    report = compute_drift(reference, log, columns=KINDS, current_prefix="in_")

    assert report.feature("x").current_size == 1500
    assert report.feature("colour").current_size == 2000 - len(range(0, 2000, 3))
    assert report.drifted_features() == []
    with pytest.raises(ValueError, match="'in_nope' missing from the current data"):
        compute_drift(reference, log, columns={"nope": "numeric"}, current_prefix="in_")
    mixed = reference.assign(x=reference["x"].astype(object))
    mixed.loc[0, "x"] = "oops"
    with pytest.raises(ValueError, match="a column mixes types"):
        compute_drift(mixed, reference)


def test_an_empty_side_is_not_drift_and_json_is_strict() -> None:
    rng = np.random.default_rng(10)
    reference = frame(100, rng)
    current = frame(100, rng)
    current["x"] = np.nan

    report = compute_drift(reference, current, columns=KINDS)

    x = report.feature("x")
    assert not x.drifted and math.isnan(x.statistic) and "no values" in x.note
    json.dumps(report.to_json(), allow_nan=False)


def window(rows: int, rng: np.random.Generator, shift: float) -> pa.Table:
    """``frame``'s law, built as Arrow (categories dictionary-encoded) to keep 400 draws quick."""
    return pa.table(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.normal(10.0, 3.0, rows),
            "z": rng.exponential(2.0, rows),
            "colour": pa.DictionaryArray.from_arrays(
                rng.choice(4, rows, p=[0.4, 0.3, 0.2, 0.1]).astype(np.int32), COLOURS
            ),
            "size": pa.DictionaryArray.from_arrays(rng.choice(3, rows).astype(np.int32), SIZES),
        }
    )


def _windows(reference: pd.DataFrame, rows: int, shift: float, seed: int) -> np.ndarray:
    """Per window: drifted? for each feature, then the dataset verdict (200 windows)."""
    rng = np.random.default_rng(seed)
    table = pa.Table.from_pandas(reference)
    flags = []
    for _ in range(200):
        report = compute_drift(table, window(rows, rng, shift), columns=KINDS)
        flags.append([f.drifted for f in report.features] + [report.drifted])
    return np.array(flags)


def test_false_alarm_rate_of_the_defaults_is_within_alpha() -> None:
    reference = frame(5000, np.random.default_rng(11))
    alpha = DriftSettings().alpha

    small = _windows(reference, 500, 0.0, seed=12)  # KS / chi-square at p < 0.05
    large = _windows(reference, 2000, 0.0, seed=13)  # distances >= 0.1

    feature_rate_small = small[:, :-1].mean()
    feature_rate_large = large[:, :-1].mean()
    print(
        f"\nfalse alarms over 200 windows x 5 features: 500-row windows "
        f"{feature_rate_small:.3f} per feature, {small[:, -1].mean():.3f} dataset; "
        f"2000-row windows {feature_rate_large:.3f} per feature, {large[:, -1].mean():.3f} dataset"
    )
    standard_error = math.sqrt(alpha * (1 - alpha) / small[:, :-1].size)
    assert feature_rate_small <= alpha + 2.5 * standard_error  # alpha, up to sampling noise
    assert feature_rate_large <= alpha
    assert small[:, -1].mean() <= alpha and large[:, -1].mean() <= alpha


def test_detection_rate_for_a_fifth_of_a_standard_deviation() -> None:
    reference = frame(5000, np.random.default_rng(14))

    small = _windows(reference, 500, 0.2, seed=15)[:, 0]
    large = _windows(reference, 2000, 0.2, seed=16)[:, 0]

    print(
        f"\ndetection of a 0.2 sd mean shift over 200 windows: "
        f"500 rows (KS) {small.mean():.3f}, 2000 rows (Wasserstein) {large.mean():.3f}"
    )
    assert small.mean() >= 0.5
    assert large.mean() >= 0.95

"""Live data quality: the data gate's schema checked on prediction-log traffic."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from shipyard.checks.schema import infer_schema
from shipyard.monitor.quality import check_live_quality, schema_from


def training(rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(20, 70, rows),
            "income": rng.lognormal(10, 0.4, rows),
            "purpose": rng.choice(["car", "home", "education"], rows),
            "default": rng.integers(0, 2, rows),
        }
    )


def traffic(rows: int, seed: int = 1) -> pd.DataFrame:
    """Served rows as the prediction log holds them: inputs prefixed with ``in_``."""
    frame = training(rows, seed).drop(columns="default").add_prefix("in_")
    frame.insert(0, "request_id", [f"r{i}" for i in range(rows)])
    frame["prediction"] = 0
    return frame


def test_clean_traffic_passes() -> None:
    report = check_live_quality(traffic(500), training(), prefix="in_", label="default")
    assert report.ok, report.findings
    assert set(report.columns) == {"age", "income", "purpose"}
    assert report.worst("missing_share") == 0.0


def test_missing_out_of_range_and_unseen_categories_are_measured() -> None:
    schema = infer_schema(training(), label="default")
    live = traffic(400)
    live.loc[:99, "in_income"] = np.nan  # 25 % missing
    live.loc[100:119, "in_age"] = -999  # a sentinel: 5 % out of range
    live.loc[120:159, "in_purpose"] = "crypto"  # 10 % never seen in training
    live.loc[160:163, "in_purpose"] = "boat"

    report = check_live_quality(live, schema, prefix="in_")

    assert not report.ok
    assert report.columns["income"].missing_share == pytest.approx(0.25)
    assert report.columns["age"].out_of_range_share == pytest.approx(0.05)
    assert report.columns["purpose"].unseen_share == pytest.approx(0.11)
    assert report.columns["purpose"].unseen_categories == ["boat", "crypto"]
    assert report.columns["income"].out_of_range_share == 0.0
    assert report.worst("missing_share") == pytest.approx(0.25)
    json.dumps(report.to_json(), allow_nan=False)


def test_schema_from_a_stored_file_and_a_missing_column(tmp_path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(infer_schema(training(), label="default")))
    live = traffic(100).drop(columns="in_age")

    report = check_live_quality(pl.from_pandas(live), str(path), prefix="in_")

    assert report.missing_columns == ["age"]  # the label is not expected in traffic
    assert not report.ok
    assert schema_from(path)["label"] == "default"


def test_text_in_a_number_column_is_a_type_problem() -> None:
    live = traffic(50)
    live["in_income"] = live["in_income"].astype(object)
    live.loc[:4, "in_income"] = "n/a"
    report = check_live_quality(live, training().drop(columns="default"), prefix="in_")
    assert report.columns["income"].type_problem_share == pytest.approx(0.1)


def test_a_schema_without_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="'columns' mapping"):
        check_live_quality(traffic(10), {"version": 1})

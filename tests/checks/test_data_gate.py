"""The data-quality gate on small frames: schema inference, validity (checked against
pandera as the reference), expectations and train/test consistency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.checks.base import FAILED, PASSED, CheckContext
from shipyard.checks.data import data_gate
from shipyard.checks.expectations import parse_expectations
from shipyard.checks.schema import infer_schema, load_schema, to_pandera
from shipyard.checks.validity import validate_frame
from shipyard.config import DataGate
from shipyard.errors import ConfigError


def applicants(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows) + 1000 * (seed + 1),
            "age": rng.integers(20, 70, rows),
            "income": rng.lognormal(10.5, 0.4, rows).round(2),
            "share": rng.random(rows).round(3),
            "purpose": rng.choice(["car", "home", "education"], rows),
            "email": [f"user{i}.{seed}@example.org" for i in range(rows)],
            "default": rng.integers(0, 2, rows),
        }
    )


def context(train, test, tmp_path: Path = Path("."), label="default") -> CheckContext:
    return CheckContext(
        root=tmp_path,
        model=None,
        model_ref="m",
        train=train,
        test=test,
        label=label,
        features=[c for c in test.columns if c != label],
    )


def test_the_inferred_schema_describes_the_columns():
    schema = infer_schema(applicants(), label="default")["columns"]
    assert schema["id"]["type"] == "integer" and schema["id"]["unique"]
    assert schema["age"]["type"] == "integer" and not schema["age"]["unique"]
    assert schema["age"]["min"] >= 0 and schema["age"]["max"] >= 69 + 24  # widened by half
    assert (schema["share"]["min"], schema["share"]["max"]) == (0.0, 1.0)
    assert schema["purpose"]["categories"] == ["car", "education", "home"]
    assert schema["email"]["categories"] is None and schema["email"]["unique"]
    assert schema["default"]["categories"] == [0, 1]
    assert not any(spec["nullable"] for spec in schema.values())


def test_whole_numbers_with_gaps_stay_integers_and_become_nullable():
    frame = applicants()
    frame.loc[3, "age"] = np.nan
    spec = infer_schema(frame)["columns"]["age"]
    assert (spec["type"], spec["nullable"]) == ("integer", True)


def dirty(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[[2, 7], "age"] = [-5, 400]
    frame.loc[[4], "purpose"] = "yacht"
    frame.loc[[9, 10], "share"] = np.nan
    frame.loc[[11], "id"] = frame.loc[12, "id"]
    frame.loc[[13], "income"] = -1.0
    return frame


def flagged_by_pandera(schema, frame) -> dict[str, set[int]]:
    import pandera.pandas as pa

    try:
        to_pandera(schema).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["index"])
        return {c: set(g["index"].astype(int)) for c, g in cases.groupby("column")}
    return {}


def flagged_by_us(schema, frame) -> dict[str, set[int]]:
    """Rows flagged per column (each column here has at most 5, so all are sampled)."""
    found = validate_frame(frame, schema, "test", frame.isna().sum(), np.random.default_rng(0))
    out: dict[str, set[int]] = {}
    for item in found:
        assert item.count == len(item.rows) <= 5
        out.setdefault(item.column, set()).update(row["_row"] for row in item.rows)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_validity_flags_exactly_the_rows_pandera_flags(seed):
    train = applicants(seed=seed)
    schema = infer_schema(train, label="default")
    test = dirty(applicants(seed=seed + 100))
    assert flagged_by_us(schema, test) == flagged_by_pandera(schema, test)


def test_clean_data_passes_both(tmp_path):
    schema = infer_schema(applicants(), label="default")
    test = applicants(seed=9)
    assert flagged_by_us(schema, test) == {} == flagged_by_pandera(schema, test)


def test_text_in_a_number_column_flags_just_those_rows():
    schema = infer_schema(applicants())
    test = applicants(seed=1).astype({"income": object})
    test.loc[[5, 6], "income"] = "n/a"
    found = validate_frame(test, schema, "test", test.isna().sum(), np.random.default_rng(0))
    assert [(f.check, f.column, f.count) for f in found] == [("type", "income", 2)]
    assert [r["_row"] for r in found[0].rows] == [5, 6]


def gate(train, test, tmp_path, **settings):
    return data_gate(context(train, test, tmp_path), DataGate(**settings))


def test_the_gate_passes_clean_data_and_reports_the_schema(tmp_path):
    result = gate(applicants(), applicants(seed=1), tmp_path, max_missing=0.01)
    assert result.status == PASSED, result.summary
    assert result.summary == "train 400 rows, test 400 rows, 7 columns: no problems"
    assert result.numbers["schema"]["columns"]["purpose"]["nullable"]  # max_missing allows gaps
    assert result.numbers["leakage"]["count"] == 0


def test_findings_carry_a_few_sampled_rows(tmp_path):
    test = applicants(seed=1)
    test.loc[::4, "purpose"] = "yacht"
    result = gate(applicants(), test, tmp_path)
    (finding,) = result.numbers["findings"]
    assert finding["check"] == "category" and finding["count"] == 100
    assert len(finding["rows"]) == 5 and {r["purpose"] for r in finding["rows"]} == {"yacht"}
    assert all(r["_row"] % 4 == 0 for r in finding["rows"])
    assert result.status == FAILED and "'yacht'" in result.summary


def test_duplicates_leakage_and_label_shift(tmp_path):
    train, test = applicants(), applicants(seed=1)
    train = pd.concat([train, train.iloc[:8]], ignore_index=True)
    test = pd.concat([test, train.iloc[20:23]], ignore_index=True)
    test["default"] = np.where(np.arange(len(test)) % 10 == 0, 0, 1)
    result = gate(train, test, tmp_path, max_duplicates=0.01)
    checks = {f["check"]: f for f in result.numbers["findings"]}
    assert checks["duplicates"]["count"] == 8 and checks["duplicates"]["failed"]
    assert checks["leakage"]["count"] == 3 and checks["leakage"]["frame"] == "test"
    assert checks["label_shift"]["failed"]
    assert result.numbers["label_shift"]["distance"] > 0.3


def test_duplicates_within_the_limit_are_a_warning(tmp_path):
    train = pd.concat([applicants(), applicants().iloc[:2]], ignore_index=True)
    result = gate(train, applicants(seed=1), tmp_path, max_duplicates=0.05)
    assert result.status == PASSED and "1 warning(s)" in result.summary


def test_leakage_can_be_turned_off(tmp_path):
    train = applicants()
    test = pd.concat([applicants(seed=1), train.iloc[:2]], ignore_index=True)
    assert gate(train, test, tmp_path).status == FAILED
    assert gate(train, test, tmp_path, leakage=False).status == PASSED


def test_train_and_test_must_have_the_same_columns(tmp_path):
    result = gate(applicants(), applicants(seed=1).drop(columns=["email"]), tmp_path)
    assert result.status == FAILED
    assert "test lacks column(s) ['email']" in result.summary


def test_a_schema_file_is_applied_to_both_frames(tmp_path):
    schema = infer_schema(applicants())
    schema["columns"]["age"]["max"] = 30
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    result = gate(applicants(), applicants(seed=1), tmp_path, schema="schema.json")
    frames = {f["frame"] for f in result.numbers["findings"] if f["check"] == "range"}
    assert frames == {"train", "test"} and result.numbers["schema_source"] == "schema.json"


def test_a_broken_schema_file_is_a_config_error(tmp_path):
    (tmp_path / "schema.json").write_text('{"columns": {"age": {"type": "number"}}}')
    with pytest.raises(ConfigError, match=r"columns\.age\.type") as raised:
        load_schema(tmp_path / "schema.json")
    assert "integer, float" in str(raised.value)


def test_expectations_of_each_kind(tmp_path):
    test = applicants(seed=1)
    test.loc[[1, 2], "email"] = "not-an-email"
    test.loc[3, "income"] = 10.0
    expectations = [
        {"column": "email", "regex": r"^[^@\s]+@[^@\s]+$"},
        {"column": "income", "between": [100, None]},
        {"column": "purpose", "in": ["car", "home", "education"]},
        {"column": "id", "unique": True},
        {"name": "cheap", "expr": "income < 50000", "mostly": 0.5, "frames": ["test"]},
    ]
    result = gate(applicants(), test, tmp_path, expectations=expectations)
    found = {
        (f["message"].split("'")[1], f["frame"], f["count"], f["failed"])
        for f in result.numbers["findings"]
    }
    assert ("email regex", "test", 2, True) in found
    assert ("income between", "test", 1, True) in found
    assert not any(name in ("purpose in", "id unique") for name, *_ in found)
    cheap = next(f for f in result.numbers["findings"] if "'cheap'" in f["message"])
    assert not cheap["failed"] and cheap["frame"] == "test"  # a fifth fail; mostly=0.5 holds


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"column": "a"}, "needs exactly one rule"),
        ({"column": "a", "in": [1], "regex": "x"}, "needs exactly one rule"),
        ({"column": "a", "regex": "("}, "not a valid pattern"),
        ({"column": "a", "between": [1]}, "needs [low, high]"),
        ({"in": [1]}, "needs 'column'"),
        ({"column": "a", "in": [1], "mostly": 2}, "'mostly' must be a share"),
        ({"column": "a", "in": [1], "colour": "red"}, "unknown key(s) ['colour']"),
        ({"column": "a", "unique": True, "frames": ["prod"]}, "'frames' must list train"),
    ],
)
def test_a_malformed_expectation_says_what_is_wrong(entry, message):
    with pytest.raises(ConfigError) as raised:
        parse_expectations([{"column": "ok", "not_null": True}, entry])
    assert "gates.data.expectations[1]" in str(raised.value) and message in str(raised.value)


def test_an_expression_that_cannot_run_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot evaluate 'salary > 0'") as raised:
        gate(applicants(), applicants(seed=1), tmp_path, expectations=[{"expr": "salary > 0"}])
    assert "income" in raised.value.hint


def test_row_hashes_treat_equal_values_alike_and_tell_rows_apart():
    from shipyard.checks.consistency import aligned_hashes

    train = pd.DataFrame({"a": [1, 2, 3], "b": [0.0, np.nan, 2.5], "c": ["x", "y", None]})
    test = pd.DataFrame({"a": [1.0, 2.0, 9.0], "b": [-0.0, np.nan, 2.5], "c": ["x", "y", None]})
    hashes = aligned_hashes({"train": train, "test": test}, label="c")
    assert list(hashes["train"]["inputs"][:2]) == list(hashes["test"]["inputs"][:2])
    assert hashes["train"]["inputs"][2] != hashes["test"]["inputs"][2]
    assert len(set(hashes["train"]["rows"])) == 3
    swapped = aligned_hashes({"t": train[["b", "a", "c"]]}, label="c")["t"]["inputs"]
    assert not np.array_equal(swapped, hashes["train"]["inputs"])  # column order counts

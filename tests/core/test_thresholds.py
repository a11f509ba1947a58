from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.core.thresholds import parse_threshold


@pytest.mark.parametrize(
    ("text", "observed", "expected"),
    [(">= 0.8", 0.8, True), ("<= 20", 20.5, False), ("> 1e-3", 0.01, True), (0.5, 0.4, False)],
)
def test_threshold_comparisons(text, observed, expected):
    assert parse_threshold(text).passes(observed) is expected


@pytest.mark.parametrize("text", ["0.8", "=> 0.8", ">= abc", "", ">=", True, float("nan")])
def test_malformed_thresholds_are_refused_with_the_form(text):
    with pytest.raises(ValueError, match=r"threshold"):
        parse_threshold(text)


@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([">=", "<=", ">", "<"]))
def test_nan_never_passes(value, op):
    assert not parse_threshold(f"{op} {value!r}").passes(math.nan)

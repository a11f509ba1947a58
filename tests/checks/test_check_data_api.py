"""The data gate from Python, on pandas and polars frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import shipyard


def frames(missing: float = 0.0):
    rng = np.random.default_rng(3)
    train = pd.DataFrame(
        {"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500), "y": rng.integers(0, 2, 500)}
    )
    test = pd.DataFrame(
        {"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200), "y": rng.integers(0, 2, 200)}
    )
    if missing:
        test.loc[test.sample(frac=missing, random_state=1).index, "x"] = np.nan
    return train, test


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_clean_frames_pass_and_missing_values_fail(kind):
    convert = (lambda f: f) if kind == "pandas" else pl.from_pandas
    train, test = frames()
    assert shipyard.check_data(convert(train), convert(test), label="y", max_missing=0.01).passed
    train, test = frames(missing=0.2)
    result = shipyard.check_data(convert(train), convert(test), label="y", max_missing=0.01)
    assert not result.passed and "x" in result.summary


def test_other_objects_are_refused():
    with pytest.raises(TypeError, match="pandas or polars"):
        shipyard.check_data([[1, 2]], label="y")

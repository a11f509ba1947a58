"""Helpers for the check tests: edit a project's config, train variant models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

NUMERIC = ["age", "income", "debt_ratio", "history_years", "amount"]
CATEGORICAL = ["purpose"]


def edit_config(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "shipyard.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def train_model(
    root: Path,
    folder: str,
    *,
    features: list[str] | None = None,
    favour_group: str | None = None,
) -> Path:
    """Train a logistic regression on the example's training data into ``folder``.

    ``favour_group``: mark half of that group's rows as defaults first, and give the
    model ``group`` as an input, so it learns to treat the group differently.
    """
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = pd.read_csv(root / "data/prepared/train.csv")
    features = list(features or NUMERIC + CATEGORICAL)
    labels = train["default"].copy()
    if favour_group is not None:
        rng = np.random.default_rng(0)
        chosen = (train["group"] == favour_group) & (rng.random(len(train)) < 0.5)
        labels[chosen] = 1
        features.append("group")
    numeric = [f for f in features if f in NUMERIC]
    categorical = [f for f in features if f not in NUMERIC]
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    model.fit(train[features], labels)
    out = root / folder
    out.mkdir(parents=True, exist_ok=True)
    sio.dump(model, out / "model.skops")
    (out / "signature.json").write_text(json.dumps({"inputs": features, "output": "default"}))
    return out

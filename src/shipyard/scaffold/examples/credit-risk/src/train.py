"""Train a logistic-regression credit-risk model and save it in the skops format.

Run: python src/train.py data/prepared model
"""

import json
import sys
from pathlib import Path

import pandas as pd
import skops.io as sio
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["age", "income", "debt_ratio", "history_years", "amount"]
CATEGORICAL = ["purpose"]  # `group` is the sensitive attribute: not a model input

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
data, out = Path(sys.argv[1]), Path(sys.argv[2])
train = pd.read_csv(data / "train.csv")
model = Pipeline(
    [
        (
            "features",
            ColumnTransformer(
                [
                    ("num", StandardScaler(), NUMERIC),
                    ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                ]
            ),
        ),
        ("clf", LogisticRegression(C=params["C"], max_iter=params["max_iter"])),
    ]
)
model.fit(train[NUMERIC + CATEGORICAL], train["default"])
out.mkdir(parents=True, exist_ok=True)
sio.dump(model, out / "model.skops")
types = {**{name: "number" for name in NUMERIC}, **{name: "string" for name in CATEGORICAL}}
signature = {"inputs": NUMERIC + CATEGORICAL, "types": types, "output": "default"}
(out / "signature.json").write_text(json.dumps(signature, indent=2) + "\n")
print(f"trained on {len(train)} rows -> {out / 'model.skops'}")

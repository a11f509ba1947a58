"""Clean the raw data and split it into train and test sets.

Run: python src/prepare.py data/raw.csv data/prepared
"""

import sys
from pathlib import Path

import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
frame = pd.read_csv(raw).drop_duplicates()
frame = frame.dropna(subset=["default"])
frame["income"] = frame["income"].fillna(frame["income"].median())
train, test = train_test_split(
    frame, test_size=params["test_size"], random_state=params["seed"], stratify=frame["default"]
)
out.mkdir(parents=True, exist_ok=True)
train.to_csv(out / "train.csv", index=False)
test.to_csv(out / "test.csv", index=False)
print(f"train: {len(train)} rows, test: {len(test)} rows")

"""Security gates' cost against training the model once, on the credit-risk example.

The poisoning gate fits five out-of-sample models (confident learning), so the issue
bounds it: it must finish within 2x the time of training the candidate once. This
script makes the example's data (``make(rows, seed)``), splits it as ``prepare.py``
does, and per round, in an order that alternates, times:

* ``train``: fitting the example's pipeline (``train.py``'s) on the training split;
* ``confident learning``: ``poisoning_gate`` with the outlier screen off;
* ``poisoning gate``: ``poisoning_gate`` as configured by default (with outliers);
* ``membership gate``: ``membership_gate`` (for scale; no goal).

It prints the median of each and the ratios against the goal **<= 2.0**. A benchmark,
not a test: it exits 0 whatever the figures are.

    .venv/bin/python bench/security_gates.py [--rows 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import shipyard.scaffold
from shipyard.checks.base import CheckContext
from shipyard.checks.security import membership_gate, poisoning_gate
from shipyard.config import MembershipGate, PoisoningGate
from shipyard.formats import load_model

GOAL = 2.0
EXAMPLE = Path(shipyard.scaffold.__file__).parent / "examples" / "credit-risk"
NUMERIC = ["age", "income", "debt_ratio", "history_years", "amount"]
CATEGORICAL = ["purpose"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of data (100000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (3)")
    parser.add_argument("--seed", type=int, default=42, help="data seed (42)")
    return parser.parse_args()


def make_data_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "src" / "make_data.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_pipeline() -> Any:
    """The pipeline of the example's ``src/train.py`` with its ``params.yaml`` values."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("features", features), ("clf", LogisticRegression(C=1.0, max_iter=500))])


def split(frame: Any) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    return train_test_split(frame, test_size=0.25, random_state=7, stratify=frame["default"])


def context(train: Any, test: Any, folder: Path) -> CheckContext:
    import skops.io as sio

    model = example_pipeline().fit(train[NUMERIC + CATEGORICAL], train["default"])
    sio.dump(model, folder / "model.skops")
    signature = {"inputs": NUMERIC + CATEGORICAL, "output": "default"}
    (folder / "signature.json").write_text(json.dumps(signature))
    return CheckContext(
        root=folder,
        model=load_model(folder),
        model_ref=str(folder),
        train=train,
        test=test,
        label="default",
        features=NUMERIC + CATEGORICAL,
    )


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    train, test = split(make_data_module().make(args.rows, args.seed))
    print(f"credit-risk example: {args.rows:,} rows, {len(train):,} for training")
    with tempfile.TemporaryDirectory() as folder:
        ctx = context(train, test, Path(folder))
        inputs, labels = train[NUMERIC + CATEGORICAL], train["default"]
        operations: dict[str, Callable[[], Any]] = {
            "train": lambda: example_pipeline().fit(inputs, labels),
            "confident learning": lambda: poisoning_gate(ctx, PoisoningGate(outliers=False)),
            "poisoning gate": lambda: poisoning_gate(ctx, PoisoningGate()),
            "membership gate": lambda: membership_gate(ctx, MembershipGate()),
        }
        for action in operations.values():  # untimed warm-up: imports, caches
            action()
        times: dict[str, list[float]] = {name: [] for name in operations}
        names = list(operations)
        for round_number in range(args.rounds):
            order = names if round_number % 2 == 0 else names[::-1]
            for name in order:
                times[name].append(timed(operations[name]))
        result = poisoning_gate(ctx, PoisoningGate())
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{'operation':<20} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in times.items():
        print(f"{name:<20} {medians[name]:>9.3f} {min(values):>7.3f} {max(values):>7.3f}")
    print(f"\nrows checked by confident learning: {result.numbers['checked_rows']:,}")
    print(f"gate verdict on the clean example: {result.status} ({result.summary})")
    for name in ("confident learning", "poisoning gate"):
        ratio = medians[name] / medians["train"]
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"{name} / train = {ratio:.2f}  ({verdict} the goal <= {GOAL:g})")


if __name__ == "__main__":
    main()

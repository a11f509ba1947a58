"""Write data/raw.csv: synthetic loan applicants with a sensitive attribute.

The label `default` depends on income, debt ratio, history and amount; `group` (A/B) is
a sensitive attribute correlated with income, so fairness gates have something to find.
Run: python src/make_data.py data/raw.csv [ROWS] [SEED]
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def make(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], size=rows, p=[0.6, 0.4])
    income = rng.lognormal(mean=np.where(group == "A", 10.9, 10.7), sigma=0.45)
    age = rng.integers(19, 75, size=rows)
    debt_ratio = np.clip(rng.beta(2, 5, size=rows) + rng.normal(0, 0.03, rows), 0, 1)
    history_years = np.clip(age - 18 - rng.integers(0, 10, size=rows), 0, None)
    amount = rng.gamma(2.0, 6000, size=rows)
    purpose = rng.choice(["car", "home", "education", "business"], size=rows)
    logit = (
        -1.3
        - 2.4 * (np.log(income) - 10.8)
        + 7.0 * (debt_ratio - 0.28)
        - 0.09 * (history_years - 15)
        + 0.00009 * (amount - 12000)
        + np.where(purpose == "business", 0.9, 0.0)
    )
    default = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "age": age,
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "history_years": history_years,
            "amount": amount.round(2),
            "purpose": purpose,
            "group": group,
            "default": default.astype(int),
        }
    )


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data/raw.csv")
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
    out.parent.mkdir(parents=True, exist_ok=True)
    make(rows, seed).to_csv(out, index=False)
    print(f"wrote {rows} rows to {out}")

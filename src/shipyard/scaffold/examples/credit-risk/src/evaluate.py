"""Evaluate the model on the test set and write metrics.json (overall and per group).

Run: python src/evaluate.py data/prepared model metrics.json
"""

import json
import sys
from pathlib import Path

import pandas as pd
import skops.io as sio
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

data, model_dir, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
test = pd.read_csv(data / "test.csv")
signature = json.loads((model_dir / "signature.json").read_text())
model_file = model_dir / "model.skops"
# Trust only scikit-learn and numpy types; anything else in the file is refused.
untrusted = sio.get_untrusted_types(file=model_file)
unexpected = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
if unexpected:
    sys.exit(f"refusing {model_file}: it contains unexpected types {unexpected}")
model = sio.load(model_file, trusted=untrusted)
features = test[signature["inputs"]]
truth = test[signature["output"]]
predicted = model.predict(features)
scores = model.predict_proba(features)[:, 1]
metrics = {
    "accuracy": accuracy_score(truth, predicted),
    "precision": precision_score(truth, predicted, zero_division=0),
    "recall": recall_score(truth, predicted, zero_division=0),
    "f1": f1_score(truth, predicted, zero_division=0),
    "roc_auc": roc_auc_score(truth, scores),
    "positive_rate_by_group": {
        str(g): float(predicted[(test["group"] == g).to_numpy()].mean())
        for g in sorted(test["group"].unique())
    },
}
out.write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}))

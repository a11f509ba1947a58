from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shipyard.core.policy import AliasRule
from shipyard.registry.service import Registry
from shipyard.store import open_artifacts, open_metadata


def make_sklearn_model(folder: Path, seed: int = 0) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(200, 3))
    labels = (features[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(LogisticRegression().fit(features, labels), folder / "model.skops")
    (folder / "signature.json").write_text('{"inputs": ["a", "b", "c"], "output": "y"}')
    return folder


@pytest.fixture
def make_model():
    return make_sklearn_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_sklearn_model(tmp_path / "model")


@pytest.fixture
def registry(metadata_url: str, tmp_path: Path):
    metadata = open_metadata(metadata_url)
    rules = {
        "production": AliasRule(
            approvals=1, four_eyes=True, require_gates=True, card_fields=("intended_use",)
        )
    }
    yield Registry(metadata, open_artifacts(str(tmp_path / "artifacts")), rules)
    metadata.close()

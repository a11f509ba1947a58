"""Stage fingerprints: pinned, so a change to what invalidates caches is deliberate."""

from __future__ import annotations

import pytest

from shipyard.core.fingerprint import stage_fingerprint

BASE = {
    "commands": ["python train.py"],
    "wdir": ".",
    "deps": {"data.csv": "a" * 64, "train.py": "b" * 64},
    "params": {"params.yaml:train.C": 1.0},
    "env": {"SEED": "1"},
    "outs": ["model"],
}


def test_golden_value_is_pinned():
    # Changing this value invalidates every user's run cache: bump FINGERPRINT_VERSION.
    assert stage_fingerprint(**BASE) == (
        "b44b9ce65640bb84cc5268edfc6110fd9804ebdb6517c7af5356b62b355caedc"
    )


def test_key_order_does_not_matter():
    shuffled = {**BASE, "deps": dict(reversed(list(BASE["deps"].items()))), "outs": ["model"]}
    assert stage_fingerprint(**shuffled) == stage_fingerprint(**BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"commands": ["python train.py --fast"]},
        {"wdir": "src"},
        {"deps": {**BASE["deps"], "data.csv": "c" * 64}},
        {"params": {"params.yaml:train.C": 0.5}},
        {"env": {"SEED": "2"}},
        {"outs": ["model", "metrics.json"]},
    ],
    ids=["command", "wdir", "dep", "param", "env", "outs"],
)
def test_every_input_changes_the_fingerprint(change):
    assert stage_fingerprint(**{**BASE, **change}) != stage_fingerprint(**BASE)

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.core.policy import AliasRule
from shipyard.registry.service import Registry
from shipyard.store import open_artifacts, open_metadata


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

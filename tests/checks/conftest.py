"""The example project, prepared once per test session and copied for each test.

Preparing it (init, then the pipeline's three stages) takes a while; each test gets
its own copy of the result, so a test may edit data, config or models freely.
The latency, poisoning and membership gates belong to other modules with their own
tests: the copies leave them out, so these tests depend only on the gates here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from check_helpers import edit_config


@pytest.fixture(scope="session")
def prepared_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shipyard

    root = tmp_path_factory.mktemp("credit-risk")
    shipyard.init_project(root, example="credit-risk")
    report = shipyard.run(root, quiet=True)
    assert report.status == "succeeded", report
    return root


def _only_our_gates(config: dict[str, Any]) -> None:
    for name in ("latency", "poisoning", "membership"):
        config["gates"].pop(name, None)
    config["governance"].pop("model_card", None)


@pytest.fixture
def example(
    prepared_example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A private copy of the prepared example, as the current directory."""
    root = tmp_path / "credit-risk"
    shutil.copytree(prepared_example, root, symlinks=True)
    edit_config(root, _only_our_gates)
    monkeypatch.chdir(root)
    for name in ("SHIPYARD_DB", "SHIPYARD_ARTIFACTS", "SHIPYARD_USER"):
        monkeypatch.delenv(name, raising=False)
    yield root

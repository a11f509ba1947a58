"""Shipyard: continuous integration and delivery for machine-learning models.

The public Python API; the CLI calls the same functions. Names are imported lazily so
``import shipyard`` (and ``shipyard --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.checks.data import check_data
    from shipyard.config import ProjectConfig, load_config
    from shipyard.errors import (
        CheckFailed,
        ConfigError,
        PipelineError,
        PolicyViolation,
        RegistryError,
        ShipyardError,
        StoreError,
    )
    from shipyard.pipeline.api import run
    from shipyard.pipeline.functions import run_functions, stage
    from shipyard.project import Project, open_project
    from shipyard.scaffold import init_project
    from shipyard.store import open_artifacts, open_metadata

__version__ = "0.1.0"

_LAZY = {
    "CheckFailed": "shipyard.errors",
    "ConfigError": "shipyard.errors",
    "PipelineError": "shipyard.errors",
    "PolicyViolation": "shipyard.errors",
    "RegistryError": "shipyard.errors",
    "ShipyardError": "shipyard.errors",
    "StoreError": "shipyard.errors",
    "ProjectConfig": "shipyard.config",
    "load_config": "shipyard.config",
    "Project": "shipyard.project",
    "open_project": "shipyard.project",
    "init_project": "shipyard.scaffold",
    "check_data": "shipyard.checks.data",
    "stage": "shipyard.pipeline.functions",
    "run_functions": "shipyard.pipeline.functions",
    "run": "shipyard.pipeline.api",
    "open_artifacts": "shipyard.store",
    "open_metadata": "shipyard.store",
}

__all__ = [
    "CheckFailed",
    "ConfigError",
    "PipelineError",
    "PolicyViolation",
    "Project",
    "ProjectConfig",
    "RegistryError",
    "ShipyardError",
    "StoreError",
    "__version__",
    "check_data",
    "init_project",
    "load_config",
    "open_artifacts",
    "open_metadata",
    "open_project",
    "run",
    "run_functions",
    "stage",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

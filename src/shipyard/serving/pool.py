"""Loaded model versions, fetched from the registry's artifact store on first use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from shipyard.errors import NotFound
from shipyard.formats import LoadedModel, load_model
from shipyard.registry.service import Registry, Version

__all__ = ["ModelPool", "Served"]


class Served:
    """A version ready to answer: the loaded model plus what validation needs."""

    def __init__(self, version: Version, loaded: LoadedModel) -> None:
        self.version = version
        self.loaded = loaded
        self.inputs = loaded.inputs or list(version.signature.get("inputs", []))
        self.types: dict[str, str] = dict(version.signature.get("types") or {})
        self.label = str(version.version)
        self.has_proba = True

    def predict_rows(self, rows: list[list[Any]]) -> tuple[Any, Any | None]:
        """Predictions (and probabilities) for validated rows in signature order."""
        fast = self.loaded.array_model
        if fast is not None:
            import numpy as np

            array = np.asarray(rows, dtype=np.float64)
            probabilities = fast.predict_proba(array)
            if probabilities is None:
                return fast.predict(array), None
            return fast.classes[probabilities.argmax(axis=1)], probabilities
        import pandas as pd

        return self.predict(pd.DataFrame(rows, columns=self.inputs))

    def predict(self, frame: Any) -> tuple[Any, Any | None]:
        predictions = self.loaded.predict(frame)
        probabilities = None
        if self.has_proba:
            try:
                probabilities = self.loaded.predict_proba(frame)
            except (AttributeError, NotImplementedError):
                self.has_proba = False
            if probabilities is None:
                self.has_proba = False
        return predictions, probabilities


class ModelPool:
    def __init__(self, registry: Registry, cache_dir: Path) -> None:
        self.registry = registry
        self.cache_dir = cache_dir
        self._models: dict[tuple[str, int], Served] = {}
        self._lock = threading.Lock()

    def peek(self, model: str, version: int) -> Served | None:
        """The version if it is loaded already (no I/O: safe on the event loop)."""
        return self._models.get((model, version))

    def get(self, model: str, version: int) -> Served:
        key = (model, version)
        served = self._models.get(key)
        if served is None:
            with self._lock:
                served = self._models.get(key) or self._load(model, version)
                self._models[key] = served
        return served

    def _load(self, model: str, number: int) -> Served:
        version = self.registry.get(f"{model}:{number}")
        if version.status == "archived":
            raise NotFound(f"{version.ref} is archived and cannot serve")
        target = self.cache_dir / version.oid.replace(".dir", "")
        if not target.exists():
            self.registry.artifacts.get(version.oid, target)
        loaded = load_model(target, version.format, trust_pickle=version.trusted_pickle)
        return Served(version, loaded)

    def default_version(self, model: str) -> int:
        """The version a model without a routing table serves: production, else latest."""
        try:
            return self.registry.get(f"{model}@production").version
        except NotFound:
            return self.registry.get(model).version

    def loaded(self) -> list[tuple[str, int]]:
        return sorted(self._models)

    def keep(self, wanted: set[tuple[str, int]]) -> None:
        """Forget versions no longer routed; in-flight requests keep their reference."""
        with self._lock:
            for key in [k for k in self._models if k not in wanted]:
                del self._models[key]

"""Loading what a check looks at: the candidate, the baseline, the data, the card.

Everything here that can be wrong because of the configuration or the command line
raises ConfigError or UsageError (exit 2) with the offending value and what to do,
before any gate runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError, NotFound, UsageError

__all__ = ["Candidate", "load_baseline", "load_card", "load_frame", "resolve_candidate"]

_REGISTRY_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(:\d+|@[A-Za-z0-9][A-Za-z0-9_.-]*)$")
_CARD_FILES = ("card.md", "MODEL_CARD.md", "model_card.md")


@dataclass(frozen=True)
class Candidate:
    """The model under test, where it came from and, if registered, its version."""

    model: Any  # LoadedModel
    ref: str
    path: Path
    version: Any | None = None  # registry Version


def _restore(project: Any, version: Any) -> Path:
    """The version's artifact, restored once into .shipyard/checks/models/<oid>."""
    dest = project.state_dir / "checks" / "models" / version.oid
    if not dest.exists():
        project.artifacts.get(version.oid, dest)
    return dest


def _from_registry(project: Any, ref: str) -> Candidate:
    from shipyard.formats import load_model
    from shipyard.registry import open_registry

    version = open_registry(project).get(ref)
    path = _restore(project, version)
    model = load_model(path, version.format, trust_pickle=version.trusted_pickle)
    return Candidate(model, version.ref, path, version)


def resolve_candidate(project: Any, ref: str | None) -> Candidate:
    """A path (relative to the project root; default ``gates.model``) or a registry
    reference ``MODEL:N`` / ``MODEL@ALIAS``."""
    from shipyard.formats import load_model

    ref = ref or project.config.gates.model
    if not ref:
        raise UsageError(
            "no model to check",
            hint="pass a model path or MODEL:N, or set gates.model in shipyard.yaml",
        )
    path = Path(ref) if Path(ref).is_absolute() else project.root / ref
    if path.exists():
        return Candidate(load_model(path), ref, path)
    if _REGISTRY_REF.match(ref):
        return _from_registry(project, ref)
    raise UsageError(
        f"model '{ref}' does not exist (looked for {path})",
        hint="train it first (`shipyard run`), pass another path, or a registered "
        "version as MODEL:N or MODEL@ALIAS",
    )


def load_frame(root: Path, rel: str, key: str) -> Any:
    """Read a CSV or Parquet file (or a folder of Parquet files) as a DataFrame."""
    import pandas as pd

    path = root / rel
    if not path.exists():
        raise ConfigError(
            f"{key}: '{rel}' does not exist",
            hint="run the pipeline first (`shipyard run`), or fix the path in shipyard.yaml",
        )
    parquet = path.is_dir() or path.suffix.lower() in (".parquet", ".pq")
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except ImportError as exc:
        raise ConfigError(
            f"{key}: reading Parquet needs pyarrow ({exc})",
            hint="pip install 'shipyard-ml[checks]'",
        ) from None
    except (ValueError, OSError) as exc:
        kind = "Parquet" if parquet else "CSV"
        raise ConfigError(f"{key}: cannot read '{rel}' as {kind}: {exc}") from None
    if frame.empty:
        raise ConfigError(f"{key}: '{rel}' has no rows")
    return frame


def load_baseline(project: Any, cfg: Any) -> tuple[Any | None, str | None, str]:
    """(model, ref, why-none) of ``baseline.model@baseline.against``."""
    from shipyard.formats import load_model
    from shipyard.registry import open_registry

    name = cfg.model or project.config.project
    ref = f"{name}@{cfg.against}"
    try:
        version = open_registry(project).get(ref)
    except NotFound:
        return None, None, f"no {cfg.against} version of '{name}' yet"
    path = _restore(project, version)
    model = load_model(path, version.format, trust_pickle=version.trusted_pickle)
    return model, f"{version.ref} ({cfg.against})", ""


def load_card(candidate: Candidate, root: Path) -> dict[str, Any]:
    """The version's card, or the sections of a card file next to the model."""
    from shipyard.registry.cards import parse_card_markdown

    if candidate.version is not None:
        return dict(candidate.version.card or {})
    folder = candidate.path if candidate.path.is_dir() else candidate.path.parent
    for place in (folder, root):
        for name in _CARD_FILES:
            if (place / name).is_file():
                return parse_card_markdown(place / name)
    return {}

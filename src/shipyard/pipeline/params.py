"""Parameter values for stages, read from params files or shipyard.yaml's ``params:``.

A stage's fingerprint covers the *values* of the keys it declares, not whole files, so
editing an unrelated key in ``params.yaml`` re-runs nothing. Parsed files are cached by
content hash, like the pipeline spec, so an unchanged params file is not re-parsed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import blake3

from shipyard.errors import PipelineError
from shipyard.pipeline.spec import INLINE, ParamRef, PipelineSpec, Stage

__all__ = ["ParamReader", "lookup_param"]

_MISSING = object()


def lookup_param(data: Any, dotted: str) -> Any:
    """The value at ``a.b.0.c`` in nested mappings and lists; KeyError when absent."""
    value = _lookup(data, dotted)
    if value is _MISSING:
        raise KeyError(dotted)
    return value


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _parse(path: Path, raw: bytes) -> Any:
    text = raw.decode("utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    import yaml

    from shipyard.config import _UniqueKeyLoader

    return yaml.load(text, Loader=_UniqueKeyLoader)


class ParamReader:
    """Reads parameter values for the stages of one pipeline."""

    def __init__(self, root: Path, spec: PipelineSpec) -> None:
        self.root = root
        self.spec = spec
        self._files: dict[str, Any] = {INLINE: spec.inline_params}
        self._cache_dir = root / ".shipyard" / "cache" / "params"

    def _file(self, stage: Stage, rel: str) -> Any:
        if rel in self._files:
            return self._files[rel]
        path = self.root / rel
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise PipelineError(
                f"stage '{stage.name}' reads params from '{rel}', which does not exist",
                stage=stage.name,
                hint=f"create '{rel}' or remove the params entry from the stage",
            ) from None
        self._files[rel] = self._load(path, rel, raw, stage)
        return self._files[rel]

    def _load(self, path: Path, rel: str, raw: bytes, stage: Stage) -> Any:
        key = blake3.blake3(raw).hexdigest()
        cached = self._cache_dir / f"{key}.json"
        try:
            return json.loads(cached.read_text())
        except (OSError, ValueError):
            pass
        try:
            data = _parse(path, raw)
        except Exception as exc:  # any parser's error becomes one clear message
            raise PipelineError(
                f"stage '{stage.name}': params file '{rel}' cannot be parsed: "
                f"{str(exc).splitlines()[0]}",
                stage=stage.name,
            ) from None
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{key}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, default=str))
        os.replace(tmp, cached)
        return json.loads(json.dumps(data, default=str))

    def values(self, stage: Stage) -> dict[str, Any]:
        """``{"file:key": value}`` for every param the stage declares."""
        result: dict[str, Any] = {}
        for ref in stage.params:
            result[self._label(ref)] = self._value(stage, ref)
        return result

    @staticmethod
    def _label(ref: ParamRef) -> str:
        return f"{ref.file}:{ref.key}" if ref.key is not None else ref.file

    def _value(self, stage: Stage, ref: ParamRef) -> Any:
        data = self._file(stage, ref.file)
        if ref.key is None:
            return data
        value = _lookup(data, ref.key)
        if value is _MISSING:
            raise PipelineError(
                f"stage '{stage.name}' needs param '{ref.key}', which is not in '{ref.file}'",
                stage=stage.name,
                hint=f"add '{ref.key}' to {ref.file} or remove it from the stage's params",
            )
        return value

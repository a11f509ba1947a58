"""The pipeline as the runner sees it: stages resolved from ``shipyard.yaml``.

Validating ``shipyard.yaml`` needs pydantic and PyYAML, which together cost more
start-up time than a whole no-op run is allowed. The validated, normalised stages are
therefore cached under ``.shipyard/cache/`` keyed by the file's content hash (and this
code's version): an unchanged file is never parsed twice, a changed one always is.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from shipyard.core.dag import StageGraph, build_graph
from shipyard.project import CONFIG_FILE, STATE_DIR

if TYPE_CHECKING:
    from shipyard.config import ProjectConfig, StageConfig

__all__ = ["Out", "ParamRef", "PipelineSpec", "Stage", "load_spec"]

_SPEC_VERSION = "1"
DEFAULT_PARAMS_FILE = "params.yaml"
INLINE = CONFIG_FILE  # the pseudo params file for shipyard.yaml's `params:` section


@dataclass(frozen=True)
class Out:
    """A declared output: a path the stage must write."""

    path: str  # project-relative
    kind: str = "out"  # out | metric | plot
    cache: bool = True
    persist: bool = False


@dataclass(frozen=True)
class ParamRef:
    """One parameter a stage reads: ``key`` in ``file`` (None means the whole file)."""

    file: str  # project-relative, or "shipyard.yaml" for the inline `params:` section
    key: str | None


@dataclass(frozen=True)
class Stage:
    name: str
    commands: tuple[str, ...]
    wdir: str = "."
    deps: tuple[str, ...] = ()
    outs: tuple[Out, ...] = ()
    params: tuple[ParamRef, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] | None = None
    always_changed: bool = False
    frozen: bool = False
    desc: str | None = None

    @property
    def out_paths(self) -> list[str]:
        return [o.path for o in self.outs]

    @staticmethod
    def from_json(data: dict[str, Any]) -> Stage:
        return Stage(
            **{
                **data,
                "commands": tuple(data["commands"]),
                "deps": tuple(data["deps"]),
                "outs": tuple(Out(**o) for o in data["outs"]),
                "params": tuple(ParamRef(**p) for p in data["params"]),
            }
        )


@dataclass(frozen=True)
class PipelineSpec:
    """What a run needs from the config: stages in order, inline params, store URLs."""

    project: str
    stages: dict[str, Stage]  # in execution order
    inline_params: dict[str, Any]
    graph: StageGraph
    store: dict[str, str | None] = field(default_factory=dict)

    @staticmethod
    def build(
        project: str,
        stages: list[Stage],
        inline_params: dict[str, Any],
        store: dict[str, str | None] | None = None,
    ) -> PipelineSpec:
        graph = build_graph(
            {s.name: list(s.deps) for s in stages}, {s.name: s.out_paths for s in stages}
        )
        by_name = {s.name: s for s in stages}
        ordered = {n: by_name[n] for n in graph.order}
        return PipelineSpec(project, ordered, inline_params, graph, store or {})

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stages": [asdict(s) for s in self.stages.values()],
            "inline_params": self.inline_params,
            "store": self.store,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> PipelineSpec:
        stages = [Stage.from_json(s) for s in data["stages"]]
        return PipelineSpec.build(data["project"], stages, data["inline_params"], data.get("store"))


def _join(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path))


def _outs(items: list[Any], kind: str, wdir: str) -> list[Out]:
    outs = []
    for item in items:
        path, options = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        options = options or {}
        outs.append(
            Out(
                _join(wdir, str(path)),
                kind,
                cache=bool(options.get("cache", True)),
                persist=bool(options.get("persist", False)),
            )
        )
    return outs


def _param_refs(items: list[Any], wdir: str, inline: dict[str, Any]) -> list[ParamRef]:
    refs = []
    for item in items:
        if isinstance(item, str):
            top = item.split(".", 1)[0]
            source = INLINE if top in inline else _join(wdir, DEFAULT_PARAMS_FILE)
            refs.append(ParamRef(source, item))
            continue
        for file, keys in item.items():
            path = _join(wdir, str(file))
            refs += [ParamRef(path, str(k)) for k in keys] if keys else [ParamRef(path, None)]
    return refs


def stage_from_config(name: str, config: StageConfig, inline: dict[str, Any]) -> Stage:
    wdir = config.wdir
    return Stage(
        name=name,
        commands=tuple(config.commands),
        wdir=wdir,
        deps=tuple(config.dep_paths()),
        outs=tuple(
            _outs(config.outs, "out", wdir)
            + _outs(config.metrics, "metric", wdir)
            + _outs(config.plots, "plot", wdir)
        ),
        params=tuple(_param_refs(config.params, wdir, inline)),
        env=dict(config.env),
        resources=config.resources.model_dump() if config.resources else None,
        always_changed=config.always_changed,
        frozen=config.frozen,
        desc=config.desc,
    )


def spec_from_config(config: ProjectConfig) -> PipelineSpec:
    stages = [stage_from_config(n, s, config.params) for n, s in config.stages.items()]
    return PipelineSpec.build(
        config.project, stages, dict(config.params), config.store.model_dump()
    )


def load_spec(root: Path) -> PipelineSpec:
    """Load the pipeline of the project at ``root``, via the validated-spec cache."""
    from shipyard import __version__

    config_path = root / INLINE
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        from shipyard.config import read_yaml

        read_yaml(config_path)  # raises the ConfigError with its hint
        raise
    key = blake3.blake3(raw + f"\0{__version__}\0{_SPEC_VERSION}".encode()).hexdigest()
    cache = root / STATE_DIR / "cache" / "spec.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return PipelineSpec.from_json(cached["spec"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no or unreadable cache: validate from scratch
    from shipyard.config import load_config

    spec = spec_from_config(load_config(config_path))
    _write_json_atomic(cache, {"key": key, "spec": spec.to_json()})
    return spec


def _write_json_atomic(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)

"""Stages written as Python functions, for users who prefer code to YAML.

::

    import shipyard

    @shipyard.stage(deps=["data/raw.csv"], outs=["data/clean.csv"], params=["prepare.seed"])
    def prepare(params):
        ...

    if __name__ == "__main__":
        shipyard.run_functions([prepare, train])

Each function becomes an ordinary stage whose command runs it in a fresh interpreter
(``python -m shipyard.pipeline.function_stage FILE:NAME``) and whose dependencies include
the file that defines it, so the same engine caches it, records its lineage and can run
it on Ray; editing the function's file re-runs it.
"""

from __future__ import annotations

import inspect
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from shipyard.errors import PipelineError
from shipyard.pipeline.executors import Console, Executor
from shipyard.pipeline.runner import RunOptions, RunReport, run_pipeline
from shipyard.pipeline.spec import DEFAULT_PARAMS_FILE, Out, ParamRef, PipelineSpec, Stage
from shipyard.project import CONFIG_FILE, Project

__all__ = ["StageDeclaration", "run_functions", "stage"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class StageDeclaration:
    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    metrics: tuple[str, ...]
    params: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    resources: dict[str, Any] | None


def stage(
    *,
    deps: Sequence[str] = (),
    outs: Sequence[str] = (),
    metrics: Sequence[str] = (),
    params: Sequence[str] = (),
    env: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Declare a function as a pipeline stage; the function itself is returned unchanged."""

    def wrap(func: F) -> F:
        func.__shipyard_stage__ = StageDeclaration(  # type: ignore[attr-defined]
            name or func.__name__,
            tuple(deps),
            tuple(outs),
            tuple(metrics),
            tuple(params),
            tuple(sorted((env or {}).items())),
            resources,
        )
        return func

    return wrap


def _to_stage(func: Callable[..., Any], root: Path) -> Stage:
    declaration: StageDeclaration | None = getattr(func, "__shipyard_stage__", None)
    if declaration is None:
        raise PipelineError(
            f"{func.__qualname__} is not a stage", hint="decorate it with @shipyard.stage(...)"
        )
    source = Path(inspect.getsourcefile(func) or "").absolute()
    try:
        rel = source.relative_to(root).as_posix()
    except ValueError:
        raise PipelineError(
            f"stage '{declaration.name}' is defined in {source}, outside the project {root}",
            stage=declaration.name,
        ) from None
    command = f"python -m shipyard.pipeline.function_stage {shlex.quote(rel)}:{func.__qualname__}"
    if declaration.params:
        command += " " + " ".join(shlex.quote(p) for p in declaration.params)
    return Stage(
        name=declaration.name,
        commands=(command,),
        deps=(rel, *declaration.deps),
        outs=tuple(Out(p) for p in declaration.outs)
        + tuple(Out(p, "metric") for p in declaration.metrics),
        params=tuple(ParamRef(DEFAULT_PARAMS_FILE, p) for p in declaration.params),
        env=dict(declaration.env),
        resources=declaration.resources,
    )


def run_functions(
    functions: Sequence[Callable[..., Any]],
    *,
    root: str | os.PathLike[str] = ".",
    project: str | None = None,
    options: RunOptions | None = None,
    executor: Executor | None = None,
    console: Console | None = None,
) -> RunReport:
    """Run decorated functions as a cached pipeline in the project at ``root``."""
    base = Path(root).absolute()
    stages = [_to_stage(f, base) for f in functions]
    name = project or _project_name(base)
    opened = Project(base)
    opened.__dict__["spec"] = PipelineSpec.build(name, stages, {})  # instead of shipyard.yaml
    opened.state_dir.mkdir(exist_ok=True)
    with opened:
        return run_pipeline(opened, options or RunOptions(), executor=executor, console=console)


def _project_name(root: Path) -> str:
    if (root / CONFIG_FILE).exists():
        from shipyard.pipeline.spec import load_spec

        return load_spec(root).project
    return root.name or "project"

"""``shipyard.run(...)``: the CLI's ``shipyard run`` as one Python call."""

from __future__ import annotations

import os

from shipyard.pipeline.executors import Console, Executor
from shipyard.pipeline.runner import RunOptions, RunReport, run_pipeline
from shipyard.project import open_project

__all__ = ["run"]


def run(
    path: str | os.PathLike[str] = ".",
    *,
    executor: Executor | None = None,
    quiet: bool = False,
    **options: object,
) -> RunReport:
    """Run the pipeline of the project at ``path``; options as for ``shipyard run``
    (``force``, ``stages``, ``downstream``, ``single``, ``dry``, ``jobs``, ``message``)."""
    with open_project(path) as project:
        return run_pipeline(
            project,
            RunOptions(**options),  # type: ignore[arg-type]
            executor=executor,
            console=Console(quiet=quiet),
        )

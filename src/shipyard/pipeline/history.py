"""Comparing recorded runs: what changed between two runs' params, data and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.store.metadata import MetadataStore, Run

__all__ = ["Change", "RunDiff", "diff_runs", "run_paths"]


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        values = (self.old, self.new)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return float(self.new - self.old)
        return None


@dataclass(frozen=True)
class RunDiff:
    a: str
    b: str
    params: list[Change] = field(default_factory=list)
    data: list[Change] = field(default_factory=list)
    metrics: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.params or self.data or self.metrics)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    keys = sorted(set(old) | set(new))
    return [Change(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def run_paths(metadata: MetadataStore, run: Run) -> dict[str, str | None]:
    """Every path a run read or wrote, with its content id (outputs win over inputs)."""
    paths: dict[str, str | None] = {}
    rows = metadata.stage_runs(run.id)
    for row in rows:
        paths.update(row["deps"])
    for row in rows:
        paths.update(row["outs"])
    return paths


def diff_runs(metadata: MetadataStore, a: str, b: str) -> RunDiff:
    """Params, data (content ids of every dep and out) and metrics that differ."""
    run_a, run_b = metadata.get_run(a), metadata.get_run(b)
    return RunDiff(
        run_a.id,
        run_b.id,
        params=_changes(run_a.params, run_b.params),
        data=_changes(run_paths(metadata, run_a), run_paths(metadata, run_b)),
        metrics=_changes(run_a.metrics, run_b.metrics),
    )

"""Comparing recorded runs: what changed between two runs' params, data and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.store.metadata import MetadataStore, Run

__all__ = ["Change", "RunDiff", "diff_runs", "run_lineage", "run_paths", "run_that_wrote"]


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


_SEARCHED_STAGE_RUNS = 500


def run_that_wrote(metadata: MetadataStore, oid: str) -> str | None:
    """The newest run with a stage whose output had this content id (or None)."""
    import sqlalchemy as sa

    from shipyard.store import schema

    table = schema.stage_runs
    query = (
        sa.select(table.c.run_id, table.c.outs)
        .where(table.c.status.in_(("ran", "restored", "up-to-date")))
        .order_by(table.c.id.desc())
        .limit(_SEARCHED_STAGE_RUNS)
    )
    with metadata.transaction(write=False) as tx:
        for row in tx.execute(query):
            if oid in (row.outs or {}).values():
                return str(row.run_id)
    return None


def run_lineage(metadata: MetadataStore, run_id: str) -> dict[str, Any]:
    """Where a run's outputs came from: commit, params, metrics and the content ids of
    its inputs that no stage produced (raw data and code)."""
    run = metadata.get_run(run_id)
    rows = metadata.stage_runs(run.id)
    produced = {p for r in rows for p in r["outs"]}
    return {
        "run_id": run.id,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "params": run.params,
        "metrics": run.metrics,
        "data": {p: o for r in rows for p, o in r["deps"].items() if p not in produced},
    }

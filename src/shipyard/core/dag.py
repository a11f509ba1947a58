"""Stage graph: edges from deps/outs, order, cycles, overlapping outputs.

A stage depends on another when one of its deps is (or lies inside, or contains) one of
the other's outs. Paths are project-relative POSIX strings, already normalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["DagError", "StageGraph", "build_graph", "path_overlaps"]


class DagError(ValueError):
    """The stages cannot form a DAG; ``stages`` names the stages involved."""

    def __init__(self, message: str, stages: Sequence[str]) -> None:
        super().__init__(message)
        self.stages = list(stages)


def path_overlaps(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are the same path or one is inside the other."""
    if a == b:
        return True
    return a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


@dataclass(frozen=True)
class StageGraph:
    """Stages in a valid order with their direct upstream stages."""

    order: tuple[str, ...]
    upstream: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def downstream_of(self, names: Iterable[str]) -> set[str]:
        """The given stages and every stage that (transitively) depends on them."""
        result = set(names)
        for stage in self.order:
            if self.upstream[stage] & result:
                result.add(stage)
        return result

    def upstream_of(self, names: Iterable[str]) -> set[str]:
        """The given stages and every stage they (transitively) depend on."""
        result = set(names)
        for stage in reversed(self.order):
            if stage in result:
                result |= self.upstream[stage]
        return result


def _check_outs(outs: Mapping[str, Sequence[str]]) -> None:
    owners: list[tuple[str, str]] = []
    for stage, paths in outs.items():
        for path in paths:
            for other_stage, other in owners:
                if path_overlaps(path, other):
                    raise DagError(
                        f"stages '{other_stage}' and '{stage}' both write '{other}'"
                        + ("" if path == other else f" / '{path}'")
                        + ": every output must belong to exactly one stage",
                        [other_stage, stage],
                    )
            owners.append((stage, path))


def _find_cycle(upstream: Mapping[str, frozenset[str]], remaining: set[str]) -> list[str]:
    """Walk upstream edges inside ``remaining`` until a stage repeats."""
    start = min(remaining)
    path = [start]
    while True:
        nxt = min(upstream[path[-1]] & remaining)
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


def build_graph(deps: Mapping[str, Sequence[str]], outs: Mapping[str, Sequence[str]]) -> StageGraph:
    """Order the stages so every stage comes after the stages it depends on.

    ``deps`` and ``outs`` map each stage name (in declaration order) to its paths.
    Ties keep declaration order, so the result is deterministic. Raises DagError for two
    stages writing one path, a stage depending on its own output, or a cycle.
    """
    _check_outs(outs)
    upstream: dict[str, frozenset[str]] = {}
    for stage, stage_deps in deps.items():
        producers = {
            producer
            for dep in stage_deps
            for producer, paths in outs.items()
            if any(path_overlaps(dep, out) for out in paths)
        }
        if stage in producers:
            raise DagError(f"stage '{stage}' depends on its own output", [stage])
        upstream[stage] = frozenset(producers)
    order: list[str] = []
    done: set[str] = set()
    remaining = set(deps)
    while remaining:
        ready = [s for s in deps if s in remaining and upstream[s] <= done]
        if not ready:
            cycle = _find_cycle(upstream, remaining)
            raise DagError(
                "stages form a cycle: " + " -> ".join(reversed(cycle)), sorted(set(cycle))
            )
        for stage in ready:
            order.append(stage)
            done.add(stage)
            remaining.discard(stage)
    return StageGraph(tuple(order), upstream)

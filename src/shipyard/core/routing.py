"""Routing decisions: which model version answers a request. Pure and deterministic.

A routing table splits traffic between versions by weight. With a sticky key (a user
id), a request's position in [0, 1) is a hash of the key, so the same user always lands
on the same arm while the weights stay put — and, because the candidate arm sits at the
top of the interval, a user already on the candidate stays there as its share grows.
Without a key, the caller's random draw decides. Segment rules (attribute matches and a
share of the key space) and feature flags are checked first; shadow versions receive a
copy of the request whose answer is only logged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Arm",
    "Decision",
    "RoutingTable",
    "Segment",
    "key_position",
    "matches",
    "route",
    "table_from_json",
]


@dataclass(frozen=True)
class Arm:
    version: int
    weight: float  # percent


@dataclass(frozen=True)
class Segment:
    """Requests whose attributes match (and whose key falls in ``percent`` of the key
    space) go to ``version``."""

    name: str
    version: int
    match: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    percent: float = 100.0


@dataclass(frozen=True)
class RoutingTable:
    model: str
    arms: tuple[Arm, ...]
    sticky: str | None = None  # attribute holding the user key, e.g. "header:x-user-id"
    segments: tuple[Segment, ...] = ()
    shadows: tuple[int, ...] = ()
    flag: str | None = None  # a feature flag whose variant value is a version number

    def versions(self) -> set[int]:
        found = {a.version for a in self.arms} | set(self.shadows)
        return found | {s.version for s in self.segments}

    def validate(self) -> None:
        """Raise ValueError naming the problem when the table cannot be served."""
        if not self.arms:
            raise ValueError("a routing table needs at least one arm")
        for arm in self.arms:
            if not math.isfinite(arm.weight) or arm.weight < 0:
                raise ValueError(f"weight of version {arm.version} must be >= 0, got {arm.weight}")
        if len({a.version for a in self.arms}) != len(self.arms):
            raise ValueError("each version may appear in only one arm")
        total = sum(a.weight for a in self.arms)
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"arm weights must add up to 100, got {total:g}")
        for segment in self.segments:
            if not 0 <= segment.percent <= 100:
                raise ValueError(f"segment '{segment.name}' percent must be 0..100")
        served = {a.version for a in self.arms if a.weight > 0}
        if set(self.shadows) & served:
            raise ValueError("a shadow version must not also serve users")

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "arms": [{"version": a.version, "weight": a.weight} for a in self.arms],
            "sticky": self.sticky,
            "segments": [
                {
                    "name": s.name,
                    "version": s.version,
                    "match": {k: list(v) for k, v in s.match.items()},
                    "percent": s.percent,
                }
                for s in self.segments
            ],
            "shadows": list(self.shadows),
            "flag": self.flag,
        }


def table_from_json(data: Mapping[str, Any]) -> RoutingTable:
    """Build and validate a table from its JSON form; ValueError says what is wrong."""
    try:
        table = RoutingTable(
            model=str(data["model"]),
            arms=tuple(Arm(int(a["version"]), float(a["weight"])) for a in data["arms"]),
            sticky=data.get("sticky"),
            segments=tuple(
                Segment(
                    str(s["name"]),
                    int(s["version"]),
                    {
                        str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
                        for k, v in (s.get("match") or {}).items()
                    },
                    float(s.get("percent", 100.0)),
                )
                for s in data.get("segments") or ()
            ),
            shadows=tuple(int(v) for v in data.get("shadows") or ()),
            flag=data.get("flag"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed routing table: {exc!r}") from None
    table.validate()
    return table


@dataclass(frozen=True)
class Decision:
    version: int
    arm: str  # "weighted", "segment:NAME" or "flag:NAME"
    shadows: tuple[int, ...] = ()


def key_position(key: str, salt: str) -> float:
    """A stable position in [0, 1) for a key (blake2b; uniform, salted per model)."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def matches(rule: Mapping[str, tuple[str, ...]], attributes: Mapping[str, str]) -> bool:
    return all(attributes.get(name) in allowed for name, allowed in rule.items())


def route(
    table: RoutingTable,
    attributes: Mapping[str, str],
    draw: float,
    flag_version: int | None = None,
) -> Decision:
    """Pick the version for one request.

    ``attributes`` holds the request's routable values (``header:x-user-id``,
    ``field:country``…); ``draw`` is a uniform [0, 1) number used when there is no
    sticky key; ``flag_version`` is the table's flag evaluated by the caller.
    """
    key = attributes.get(table.sticky) if table.sticky else None
    position = key_position(key, table.model) if key else draw
    for segment in table.segments:
        if matches(segment.match, attributes) and position * 100 < segment.percent:
            return Decision(segment.version, f"segment:{segment.name}", table.shadows)
    if flag_version is not None:
        return Decision(flag_version, f"flag:{table.flag}", table.shadows)
    cumulative = 0.0
    for arm in table.arms:
        cumulative += arm.weight / 100
        if position < cumulative:
            return Decision(arm.version, "weighted", table.shadows)
    last = next(a for a in reversed(table.arms) if a.weight > 0)
    return Decision(last.version, "weighted", table.shadows)

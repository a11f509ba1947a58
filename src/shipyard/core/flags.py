"""Feature flags: named variants chosen per request by segment rules. Pure.

A flag has variants (name -> value), a default variant, and ordered rules; the first
rule whose attributes match and whose share of the key space contains the request's
key decides. The same evaluation runs in the gateway (a flag can pick a model version)
and behind the OpenFeature provider, so applications and routing agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.routing import key_position, matches

__all__ = ["Evaluation", "Flag", "FlagRule", "evaluate", "flag_from_json"]


@dataclass(frozen=True)
class FlagRule:
    variant: str
    match: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    percent: float = 100.0


@dataclass(frozen=True)
class Flag:
    name: str
    variants: Mapping[str, Any]
    default: str
    rules: tuple[FlagRule, ...] = ()
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variants": dict(self.variants),
            "default": self.default,
            "rules": [
                {
                    "variant": r.variant,
                    "match": {k: list(v) for k, v in r.match.items()},
                    "percent": r.percent,
                }
                for r in self.rules
            ],
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class Evaluation:
    variant: str
    value: Any
    reason: str  # TARGETING_MATCH, SPLIT, DEFAULT, DISABLED (OpenFeature's reasons)


def flag_from_json(data: Mapping[str, Any]) -> Flag:
    """Build and check a flag; ValueError says what is wrong."""
    try:
        flag = Flag(
            name=str(data["name"]),
            variants=dict(data["variants"]),
            default=str(data["default"]),
            rules=tuple(
                FlagRule(
                    str(r["variant"]),
                    {
                        str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
                        for k, v in (r.get("match") or {}).items()
                    },
                    float(r.get("percent", 100.0)),
                )
                for r in data.get("rules") or ()
            ),
            enabled=bool(data.get("enabled", True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed flag: {exc!r}") from None
    unknown = {flag.default, *(r.variant for r in flag.rules)} - set(flag.variants)
    if unknown:
        raise ValueError(f"flag '{flag.name}' refers to unknown variant(s) {sorted(unknown)}")
    if any(not 0 <= r.percent <= 100 for r in flag.rules):
        raise ValueError(f"flag '{flag.name}': rule percent must be 0..100")
    return flag


def evaluate(flag: Flag, attributes: Mapping[str, str], key: str | None) -> Evaluation:
    if not flag.enabled:
        return Evaluation(flag.default, flag.variants[flag.default], "DISABLED")
    position = key_position(key, flag.name) if key else 0.0
    for rule in flag.rules:
        if matches(rule.match, attributes) and position * 100 < rule.percent:
            reason = "SPLIT" if rule.percent < 100 else "TARGETING_MATCH"
            return Evaluation(rule.variant, flag.variants[rule.variant], reason)
    return Evaluation(flag.default, flag.variants[flag.default], "DEFAULT")

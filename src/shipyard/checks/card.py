"""Model-card gate: the fields governance requires are filled in.

The required fields come from ``governance.model_card`` (``ctx.required_card_fields``),
plus any a ``cfg`` names; the values from the candidate's card (``ctx.card``). Field
names match the way ``--card CARD.md`` headings become keys: ``## Intended use`` is
``intended_use``. A field is missing when it is absent, blank, or an obvious
placeholder such as "TODO" or "_not provided_" (what an unfilled card shows).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.checks.base import FAILED, PASSED, SKIPPED, CheckContext, GateResult

__all__ = ["PLACEHOLDERS", "card_field_key", "card_gate", "missing_card_fields"]

PLACEHOLDERS = frozenset(
    {"todo", "tbd", "tba", "n/a", "na", "none", "null", "-", "...", "not provided", "fill me in"}
)


def card_field_key(name: str) -> str:
    """``"Intended use"`` -> ``"intended_use"``, as card headings are parsed."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def _is_filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        text = value.strip().strip("_*").strip()
        return bool(text) and text.lower() not in PLACEHOLDERS
    if isinstance(value, Mapping | list | tuple | set):
        return any(_is_filled(v) for v in (value.values() if isinstance(value, Mapping) else value))
    return True


def missing_card_fields(card: Mapping[str, Any], required: Iterable[str]) -> list[str]:
    """The required field keys that ``card`` leaves absent, blank or as a placeholder."""
    values = {card_field_key(k): v for k, v in card.items()}
    return [
        key
        for key in dict.fromkeys(map(card_field_key, required))
        if not _is_filled(values.get(key))
    ]


def _required(ctx: CheckContext, cfg: Any) -> list[str]:
    extra = cfg if isinstance(cfg, list | tuple) else getattr(cfg, "model_card", None) or ()
    names = [*ctx.required_card_fields, *extra]
    return list(dict.fromkeys(card_field_key(n) for n in names if card_field_key(n)))


def _heading(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _advice(missing: list[str]) -> str:
    sections = "\n".join(f"## {_heading(k)}\n<what a reader needs to know>\n" for k in missing)
    return (
        f"Fill in {', '.join(missing)}: write a Markdown file with one section per field, "
        f"for example CARD.md:\n\n{sections}\nthen register the model with it: "
        "`shipyard register MODEL PATH --card CARD.md` (headings become field names: "
        "'## Intended use' is intended_use). governance.model_card in shipyard.yaml "
        "lists the required fields."
    )


def card_gate(ctx: CheckContext, cfg: Any = None) -> GateResult:
    """Pass when every required model-card field is filled in.

    ``cfg`` may be None, a list of extra field names, or an object with ``model_card``.
    Skipped when governance requires no fields.
    """
    started = time.perf_counter()
    required = _required(ctx, cfg)
    if not required:
        return GateResult("card", SKIPPED, "governance requires no model-card fields")
    missing = missing_card_fields(ctx.card, required)
    table = [{"field": key, "filled": key not in missing} for key in required]
    numbers = {"required": len(required), "missing": len(missing), "missing_fields": missing}
    if missing:
        summary = f"model card is missing {len(missing)} of {len(required)} required field(s): "
        return GateResult(
            "card",
            FAILED,
            summary + ", ".join(missing),
            numbers,
            {"fields": table},
            advice=_advice(missing),
            seconds=time.perf_counter() - started,
        )
    return GateResult(
        "card",
        PASSED,
        f"model card has all {len(required)} required field(s): {', '.join(required)}",
        numbers,
        {"fields": table},
        seconds=time.perf_counter() - started,
    )

"""Model-card gate: required fields filled in, missing ones named with how to fix them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipyard.checks.base import FAILED, PASSED, SKIPPED, CheckContext
from shipyard.checks.card import card_field_key, card_gate, missing_card_fields
from shipyard.config import GovernanceConfig
from shipyard.registry.cards import parse_card_markdown


def _context(card: dict[str, Any], required: tuple[str, ...]) -> CheckContext:
    return CheckContext(
        root=Path("."),
        model=None,
        model_ref="model",
        train=None,
        test=None,
        label=None,
        features=[],
        card=card,
        required_card_fields=required,
    )


def test_a_complete_card_passes() -> None:
    ctx = _context(
        {"intended_use": "Pre-screening loans.", "limitations": "Synthetic data."},
        ("intended_use", "limitations"),
    )

    result = card_gate(ctx, None)

    assert result.status == PASSED
    assert result.numbers == {"required": 2, "missing": 0, "missing_fields": []}
    assert result.summary == "model card has all 2 required field(s): intended_use, limitations"


def test_missing_fields_are_listed_with_how_to_fill_them() -> None:
    ctx = _context(
        {"intended_use": "Pre-screening loans."}, ("intended_use", "limitations", "owners")
    )

    result = card_gate(ctx, None)

    assert result.status == FAILED
    assert result.summary == "model card is missing 2 of 3 required field(s): limitations, owners"
    assert result.numbers["missing_fields"] == ["limitations", "owners"]
    assert result.tables["fields"] == [
        {"field": "intended_use", "filled": True},
        {"field": "limitations", "filled": False},
        {"field": "owners", "filled": False},
    ]
    assert "## Limitations" in result.advice and "## Owners" in result.advice
    assert "shipyard register MODEL PATH --card CARD.md" in result.advice
    assert "'## Intended use' is intended_use" in result.advice


@pytest.mark.parametrize("value", ["", "   ", "TODO", "tbd", "_not provided_", None, [], {"a": ""}])
def test_blank_and_placeholder_values_count_as_missing(value: Any) -> None:
    assert missing_card_fields({"limitations": value}, ["limitations"]) == ["limitations"]


@pytest.mark.parametrize("value", ["Synthetic data only.", ["no minors"], {"scope": "EU"}, 3])
def test_real_values_count_as_filled(value: Any) -> None:
    assert missing_card_fields({"limitations": value}, ["limitations"]) == []


def test_field_names_are_matched_as_card_headings_are_parsed() -> None:
    assert card_field_key("Intended use") == "intended_use"
    assert missing_card_fields({"Intended Use": "Loans."}, ["intended use"]) == []


def test_a_card_written_in_markdown_satisfies_the_gate(tmp_path: Path) -> None:
    card_file = tmp_path / "CARD.md"
    card_file.write_text("## Intended use\nPre-screening.\n\n## Limitations\nSynthetic only.\n")
    ctx = _context(parse_card_markdown(card_file), ("intended_use", "limitations"))

    assert card_gate(ctx, None).status == PASSED


def test_governance_config_adds_its_fields() -> None:
    ctx = _context({"intended_use": "Loans."}, ("intended_use",))
    cfg = GovernanceConfig(model_card=["intended_use", "ethical_considerations"])

    result = card_gate(ctx, cfg)

    assert result.status == FAILED
    assert result.numbers["missing_fields"] == ["ethical_considerations"]


def test_nothing_required_skips() -> None:
    result = card_gate(_context({}, ()), None)

    assert result.status == SKIPPED
    assert result.summary == "governance requires no model-card fields"

"""The OpenFeature provider evaluates the same flags the gateway routes by."""

from __future__ import annotations

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from shipyard.core.flags import flag_from_json
from shipyard.serving.control import ControlPlane
from shipyard.serving.openfeature import ShipyardProvider
from shipyard.store import open_metadata


def test_provider_follows_flag_changes(tmp_path):
    metadata = open_metadata(f"sqlite:///{tmp_path / 'db.sqlite'}")
    control = ControlPlane(metadata)
    control.set_flag(
        flag_from_json(
            {
                "name": "new-checkout",
                "variants": {"on": True, "off": False},
                "default": "off",
                "rules": [{"variant": "on", "match": {"country": ["NL"]}}],
            }
        ),
        actor="dev",
    )
    api.set_provider(ShipyardProvider(control, refresh_seconds=0))
    client = api.get_client()
    dutch = EvaluationContext("user-1", {"country": "NL"})
    assert client.get_boolean_value("new-checkout", False, dutch) is True
    assert client.get_boolean_value("new-checkout", False, EvaluationContext("u2")) is False
    details = client.get_boolean_details("missing", True)
    assert details.value is True and details.error_code is not None
    assert client.get_string_value("new-checkout", "x", dutch) == "x"  # type mismatch -> default
    control.set_flag(
        flag_from_json(
            {"name": "new-checkout", "variants": {"on": True, "off": False}, "default": "on"}
        ),
        actor="dev",
    )
    assert client.get_boolean_value("new-checkout", False, EvaluationContext("u2")) is True
    metadata.close()

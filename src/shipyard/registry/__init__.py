"""The model registry service: versions, aliases, approvals, cards, users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.core.policy import AliasRule

if TYPE_CHECKING:
    from shipyard.config import GovernanceConfig
    from shipyard.project import Project
    from shipyard.registry.service import Registry
    from shipyard.store.metadata import MetadataStore

__all__ = ["open_registry", "record_policy", "rules_from_config"]


def rules_from_config(governance: GovernanceConfig) -> dict[str, AliasRule]:
    """Alias rules from ``governance:``: per-alias entries, and the top-level
    settings for ``production`` unless it has its own entry."""
    rules = {
        "production": AliasRule(
            approvals=governance.approvals,
            four_eyes=governance.four_eyes,
            require_gates=governance.require_gates,
            card_fields=tuple(governance.model_card),
        )
    }
    for alias, policy in governance.aliases.items():
        roles = ("admin",) if policy.approver_role == "admin" else ("approver", "admin")
        rules[alias] = AliasRule(
            approvals=policy.approvals,
            four_eyes=policy.four_eyes,
            approver_roles=roles,
            require_gates=policy.require_gates,
            card_fields=tuple(policy.model_card),
        )
    return rules


def open_registry(project: Project) -> Registry:
    """The project's registry under its governance rules. A change to those rules since
    the last time is appended to the audit log first (action ``policy.change``)."""
    from shipyard.registry.service import Registry

    governance = project.config.governance
    record_policy(project.metadata, governance.model_dump(mode="json"), actor=project.actor)
    return Registry(project.metadata, project.artifacts, rules_from_config(governance))


def record_policy(metadata: MetadataStore, policy: dict[str, Any], *, actor: str) -> bool:
    """Audit the governance policy when it differs from the last one recorded."""
    import json

    from shipyard.store.hashing import hash_bytes

    digest = hash_bytes(json.dumps(policy, sort_keys=True).encode())
    last = metadata.events(action="policy.change", last=True)
    if last and last[0].details.get("hash") == digest:
        return False
    metadata.append_event(actor, "policy.change", "governance", {"hash": digest, "policy": policy})
    return True

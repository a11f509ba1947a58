"""The model registry service: versions, aliases, approvals, cards, users."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.core.policy import AliasRule

if TYPE_CHECKING:
    from shipyard.config import GovernanceConfig
    from shipyard.project import Project
    from shipyard.registry.service import Registry

__all__ = ["open_registry", "rules_from_config"]


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
    from shipyard.registry.service import Registry

    return Registry(
        project.metadata, project.artifacts, rules_from_config(project.config.governance)
    )

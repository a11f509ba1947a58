"""Governance decisions: may a version take an alias, and may a user do an action?

Pure functions over plain facts; the registry gathers the facts in a transaction and
acts on the answer in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ROLES",
    "AliasRule",
    "ApprovalFact",
    "VersionFacts",
    "missing_requirements",
    "role_allows",
]

ROLES = ("viewer", "developer", "approver", "admin")

# The least role each action needs. Approving is separate from developing: an approver
# need not be able to register, and a developer cannot approve.
_NEEDS = {
    "read": {"viewer", "developer", "approver", "admin"},
    "register": {"developer", "admin"},
    "alias": {"developer", "approver", "admin"},
    "approve": {"approver", "admin"},
    "archive": {"developer", "admin"},
    "deploy": {"developer", "admin"},
    "admin": {"admin"},
}


def role_allows(role: str, action: str) -> bool:
    """True when ``role`` may perform ``action`` (one of the keys above)."""
    return role in _NEEDS.get(action, set())


@dataclass(frozen=True)
class AliasRule:
    """What a version needs before an alias may point at it."""

    approvals: int = 0
    four_eyes: bool = False
    approver_roles: tuple[str, ...] = ("approver", "admin")
    require_gates: bool = False
    card_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalFact:
    actor: str
    role: str
    decision: str  # approve | reject


@dataclass(frozen=True)
class VersionFacts:
    author: str
    archived: bool = False
    gates_passed: bool | None = None  # None: gates never ran
    card: Mapping[str, object] = field(default_factory=dict)
    approvals: Sequence[ApprovalFact] = ()


def _standing(approvals: Sequence[ApprovalFact]) -> dict[str, ApprovalFact]:
    """Each person's latest decision counts; an earlier one is superseded."""
    latest: dict[str, ApprovalFact] = {}
    for fact in approvals:
        latest[fact.actor] = fact
    return latest


def missing_requirements(rule: AliasRule, facts: VersionFacts) -> list[str]:
    """Everything that stops the version from taking the alias; empty means allowed.

    With four-eyes, the author's own approval never counts.
    """
    missing = []
    if facts.archived:
        missing.append("the version is archived")
    if rule.require_gates and facts.gates_passed is not True:
        missing.append(
            "quality gates have not passed"
            if facts.gates_passed is False
            else "quality gates have not been run (shipyard check)"
        )
    empty = [name for name in rule.card_fields if not str(facts.card.get(name) or "").strip()]
    if empty:
        missing.append(f"model card field(s) not filled in: {', '.join(empty)}")
    standing = _standing(facts.approvals).values()
    rejections = [f.actor for f in standing if f.decision == "reject"]
    if rejections:
        missing.append(f"rejected by {', '.join(sorted(rejections))}")
    counted = [
        f.actor
        for f in standing
        if f.decision == "approve"
        and f.role in rule.approver_roles
        and not (rule.four_eyes and f.actor == facts.author)
    ]
    if len(counted) < rule.approvals:
        need = rule.approvals - len(counted)
        who = " from someone other than the author" if rule.four_eyes else ""
        roles = "/".join(rule.approver_roles)
        missing.append(f"{need} more approval(s) by a {roles}{who}")
    return missing

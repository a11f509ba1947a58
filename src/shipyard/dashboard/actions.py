"""The deployment buttons: pause, resume, promote, abort and rollback a live rollout.

A button calls the same functions as ``shipyard rollout …`` and the admin API
(``shipyard.rollout.api``), so it does exactly what they do and is refused for the
same reasons. Steering a live rollout needs the role that may move an alias
(developers, approvers, admins); a viewer may not.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import NotFound, UsageError

__all__ = ["ACTIONS", "perform"]

ACTIONS = {
    "pause": "alias",
    "resume": "alias",
    "promote": "alias",
    "abort": "alias",
    "rollback": "alias",
}


def perform(action: str, model: str, *, actor: str, project: Any) -> dict[str, Any]:
    """Apply ``action`` to the live rollout of ``model``; returns the rollout's state.

    Raises UsageError for an unknown action, NotFound without a project or a live
    rollout, Conflict or PolicyViolation as the rollout API decides.
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    if project is None:
        raise NotFound(
            "this dashboard was started without a project, so it cannot steer rollouts",
            hint="run shipyard serve or shipyard ui inside the project",
        )
    from shipyard.rollout import api

    reason = f"{action} from the dashboard by {actor}"
    if action == "rollback":
        result = api.rollback(project, model, actor=actor, reason=reason)
        rollout = result.get("rollout") or {}
    elif action == "abort":
        rollout = api.abort(project, model, actor=actor, reason=reason)
    else:
        rollout = getattr(api, action)(project, model, actor=actor)
    return {"model": model, "id": rollout.get("id"), "state": rollout.get("state")}

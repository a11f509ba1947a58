"""Who is looking at the dashboard, and whether they may press a button.

People sign in with a registry token (``shipyard token create``). The dashboard keeps
the token in memory under a random session id and gives the browser only that id, in
an HttpOnly, SameSite=Strict cookie; every request re-checks the token, so revoking it
ends the session at once. A fresh project with no users is in single-user mode: the
person at the (loopback-only) dashboard is the local admin, as on the CLI.

Buttons are protected three ways: the role check (the same ``role_allows`` table the
CLI and admin API use), the Origin check (a foreign page cannot post here), and a
per-session CSRF token that a page of ours sends back in a header.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from shipyard.core.policy import role_allows
from shipyard.registry.users import UserDirectory

__all__ = ["COOKIE", "Refused", "Sessions", "Viewer"]

COOKIE = "shipyard_session"
_MAX_SESSIONS = 10_000


class Refused(Exception):
    """A request the dashboard refuses, with its HTTP status and a message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Viewer:
    name: str
    role: str
    session: bool  # signed in with a token; False in single-user mode
    csrf: str

    def may(self, action: str) -> bool:
        return role_allows(self.role, action)


class Sessions:
    def __init__(
        self,
        users: UserDirectory,
        *,
        ttl: float = 8 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users, self.ttl, self.clock = users, ttl, clock
        self._sessions: dict[str, tuple[str, str, float]] = {}  # id -> token, csrf, expiry
        self._lock = threading.Lock()
        self._local_csrf = secrets.token_urlsafe(24)

    def login(self, token: str) -> tuple[str, Viewer] | None:
        """A new session for a valid token, else None."""
        user = self.users.authenticate(token.strip())
        if user is None:
            return None
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            if len(self._sessions) >= _MAX_SESSIONS:  # bounded memory: drop the oldest
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session_id] = (token.strip(), csrf, self.clock() + self.ttl)
        return session_id, Viewer(user.name, user.role, True, csrf)

    def logout(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def viewer(self, request: Request) -> Viewer | None:
        """The signed-in person, the local admin in single-user mode, or None."""
        session_id = request.cookies.get(COOKIE, "")
        with self._lock:
            found = self._sessions.get(session_id)
        if found is not None:
            token, csrf, expires = found
            user = self.users.authenticate(token) if expires > self.clock() else None
            if user is not None:
                return Viewer(user.name, user.role, True, csrf)
            self.logout(session_id)
        if not self.users.list():
            return Viewer("local", "admin", False, self._local_csrf)
        return None


def same_origin(request: Request, allowed_hosts: tuple[str, ...]) -> None:
    """Refuse a request whose Origin is missing or names a host we do not serve."""
    origin = request.headers.get("origin")
    if not origin:
        raise Refused("a change needs an Origin header (send it from the dashboard page)", 403)
    host = urlsplit(origin).hostname or ""
    if host not in {h.strip("[]") for h in allowed_hosts} and "*" not in allowed_hosts:
        raise Refused(f"requests from origin {origin!r} are not allowed", 403)


def require(
    request: Request, viewer: Viewer | None, action: str, allowed_hosts: tuple[str, ...]
) -> Viewer:
    """The viewer, if this POST may ``action``; else Refused with 401/403/415."""
    same_origin(request, allowed_hosts)
    if viewer is None:
        raise Refused("sign in first (a token from shipyard token create)", 401)
    sent = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise Refused("the page's CSRF token is missing or stale; reload the page", 403)
    if not viewer.may(action):
        raise Refused(f"user '{viewer.name}' (role {viewer.role}) may not {action}", 403)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(
            f"content type {kind or 'none'!r} is not accepted; send application/json", 415
        )
    return viewer

"""The CLI as a token holder against a running gateway (``SHIPYARD_URL``, ``SHIPYARD_TOKEN``).

Registry changes then go through the server's admin API, under the token's user and
role, exactly as the dashboard's buttons do; without ``SHIPYARD_URL`` the CLI acts on
the local stores as the local user.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from shipyard.errors import (
    Conflict,
    NotFound,
    PolicyViolation,
    ShipyardError,
    UsageError,
)

__all__ = ["KEEP", "RemoteRegistry", "remote_from_env"]

_ERRORS = {401: UsageError, 403: PolicyViolation, 404: NotFound, 409: Conflict}


class RemoteRegistry:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = str(exc.reason)
            raise _ERRORS.get(exc.code, ShipyardError)(f"{self.url}: {message}") from None
        except urllib.error.URLError as exc:
            raise ShipyardError(
                f"cannot reach {self.url}: {exc.reason}", hint="check SHIPYARD_URL"
            ) from None

    def models(self) -> Any:
        return self.call("GET", "/admin/models")

    def get(self, ref: str) -> Any:
        return self.call("GET", f"/admin/models/{quote(ref, safe='')}")

    def decide(self, ref: str, decision: str, alias: str, comment: str | None) -> Any:
        model, version = _split(ref)
        body = {"decision": decision, "alias": alias, "comment": comment}
        return self.call("POST", f"/admin/models/{quote(model)}/versions/{version}/decision", body)

    def set_alias(self, ref: str, alias: str, expected: Any, reason: str | None) -> Any:
        model, version = _split(ref)
        body: dict[str, Any] = {"version": version, "reason": reason}
        if expected is not KEEP:
            body["expected"] = expected
        return self.call("POST", f"/admin/models/{quote(model)}/aliases/{quote(alias)}", body)

    def rollback(self, model: str, alias: str) -> Any:
        return self.call("POST", f"/admin/models/{quote(model)}/rollback", {"alias": alias})


KEEP: Any = object()


def _split(ref: str) -> tuple[str, int]:
    model, _, version = ref.rpartition(":")
    if not model or not version.isdigit():
        raise UsageError(f"{ref!r} must name a version, like MODEL:3")
    return model, int(version)


def remote_from_env() -> RemoteRegistry | None:
    url = os.environ.get("SHIPYARD_URL")
    if not url:
        return None
    token = os.environ.get("SHIPYARD_TOKEN")
    if not token:
        raise UsageError(
            "SHIPYARD_URL is set but SHIPYARD_TOKEN is not",
            hint="create one with `shipyard token create USER` and export it",
        )
    return RemoteRegistry(url, token)

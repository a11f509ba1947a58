"""The admin API: routing tables, flags and reloads, behind tokens with roles.

Every route of the app is listed in ``POLICY`` with what it needs ("public", or a
registry action such as "deploy"); a test walks the app's routes and fails if one is
missing, so a new endpoint cannot ship unprotected by accident. Mutations take only
``application/json`` (415 otherwise), refuse a foreign ``Origin`` (403) and tokens in
the query string (400).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from shipyard.core.flags import flag_from_json
from shipyard.core.policy import role_allows
from shipyard.core.routing import table_from_json
from shipyard.dashboard import POLICY as DASHBOARD_POLICY
from shipyard.errors import Conflict, UsageError
from shipyard.registry.users import UserDirectory
from shipyard.serving.inputs import BadRequest

__all__ = ["POLICY", "authorize", "routes"]

POLICY: dict[tuple[str, str], str] = {
    ("POST", "/v1/models/{model}/predict"): "public",
    ("POST", "/v1/feedback"): "public",
    ("POST", "/v1/flags/{name}/evaluate"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/v2"): "public",
    ("GET", "/v2/health/live"): "public",
    ("GET", "/v2/health/ready"): "public",
    ("GET", "/v2/models/{model}"): "public",
    ("GET", "/v2/models/{model}/ready"): "public",
    ("GET", "/v2/models/{model}/versions/{version}"): "public",
    ("GET", "/v2/models/{model}/versions/{version}/ready"): "public",
    ("POST", "/v2/models/{model}/infer"): "public",
    ("POST", "/v2/models/{model}/versions/{version}/infer"): "public",
    ("GET", "/admin/routing"): "read",
    ("GET", "/admin/routing/{model}"): "read",
    ("PUT", "/admin/routing/{model}"): "deploy",
    ("GET", "/admin/flags"): "read",
    ("PUT", "/admin/flags/{name}"): "deploy",
    ("POST", "/admin/reload"): "deploy",
    ("GET", "/admin/models"): "read",
    ("GET", "/admin/models/{ref}"): "read",
    ("POST", "/admin/models/{model}/versions/{version}/decision"): "approve",
    ("POST", "/admin/models/{model}/aliases/{alias}"): "alias",
    ("POST", "/admin/models/{model}/rollback"): "alias",
    ("GET", "/admin/rollouts"): "read",
    ("GET", "/admin/rollouts/{model}"): "read",
    ("POST", "/admin/rollouts/{model}"): "deploy",
    ("POST", "/admin/rollouts/{model}/{action}"): "alias",
    **DASHBOARD_POLICY,  # the dashboard at /ui checks these itself (session cookie + CSRF)
}


class Denied(BadRequest):
    pass


def authorize(
    request: Request, users: UserDirectory, action: str, allowed_hosts: tuple[str, ...]
) -> str:
    """The caller's name if their token's role allows ``action``; else a 4xx."""
    if any(k in request.query_params for k in ("token", "access_token", "api_key")):
        raise Denied(
            "tokens are not accepted in the query string; use the Authorization header", 400
        )
    origin = request.headers.get("origin")
    if origin and (urlsplit(origin).hostname or "") not in {h.strip("[]") for h in allowed_hosts}:
        raise Denied(f"requests from origin {origin!r} are not allowed", 403)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Denied(
            "this endpoint needs 'Authorization: Bearer <token>' (shipyard token create)", 401
        )
    user = users.authenticate(token.strip())
    if user is None:
        raise Denied("the token is unknown, expired or revoked", 401)
    if not role_allows(user.role, action):
        raise Denied(f"user '{user.name}' (role {user.role}) may not {action}", 403)
    if request.method != "GET":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Denied(
                f"content type {kind or 'none'!r} is not accepted; send application/json", 415
            )
    return user.name


def routes(gateway: Any) -> list[tuple[str, Any, list[str]]]:
    from starlette.concurrency import run_in_threadpool

    from shipyard.serving.app import json_response, read_json

    users = UserDirectory(gateway.registry.metadata)
    control = gateway.control

    def protected(action: str, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            actor = await run_in_threadpool(
                authorize, request, users, action, gateway.settings.allowed_hosts
            )
            return await handler(request, actor)

        return endpoint

    async def list_routing(request: Request, actor: str) -> Response:
        snapshot = await run_in_threadpool(control.snapshot)
        return json_response({m: t.to_json() for m, t in snapshot.tables.items()})

    async def get_routing(request: Request, actor: str) -> Response:
        table, revision = await run_in_threadpool(control.get_table, request.path_params["model"])
        return json_response({**table.to_json(), "revision": revision})

    async def put_routing(request: Request, actor: str) -> Response:
        payload = await read_json(request, gateway)
        if not isinstance(payload, dict):
            raise BadRequest("send the routing table as a JSON object")
        expected = payload.pop("expected_revision", None)
        try:
            table = table_from_json({**payload, "model": request.path_params["model"]})
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        for version in table.versions():  # refuse a version that cannot load, before saving
            await run_in_threadpool(gateway.served, table.model, version)
        try:
            revision = await run_in_threadpool(
                lambda: control.set_table(table, actor=actor, expected=expected)
            )
        except Conflict as exc:
            raise BadRequest(exc.message, 409) from None
        await run_in_threadpool(gateway.refresh)
        return json_response({"model": table.model, "revision": revision})

    async def list_flags(request: Request, actor: str) -> Response:
        snapshot = await run_in_threadpool(control.snapshot)
        return json_response({n: f.to_json() for n, f in snapshot.flags.items()})

    async def put_flag(request: Request, actor: str) -> Response:
        payload = await read_json(request, gateway)
        if not isinstance(payload, dict):
            raise BadRequest("send the flag as a JSON object")
        expected = payload.pop("expected_revision", None)
        try:
            flag = flag_from_json({**payload, "name": request.path_params["name"]})
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        try:
            revision = await run_in_threadpool(
                lambda: control.set_flag(flag, actor=actor, expected=expected)
            )
        except (Conflict, UsageError) as exc:
            raise BadRequest(exc.message, 409 if isinstance(exc, Conflict) else 422) from None
        await run_in_threadpool(gateway.refresh)
        return json_response({"flag": flag.name, "revision": revision})

    async def reload(request: Request, actor: str) -> Response:
        await run_in_threadpool(gateway.refresh)
        return json_response({"change_token": gateway.snapshot.revision})

    registry = gateway.registry

    def _body(payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise BadRequest("send a JSON object")
        return payload

    async def list_models(request: Request, actor: str) -> Response:
        return json_response(await run_in_threadpool(registry.models))

    async def get_model(request: Request, actor: str) -> Response:
        return json_response(await run_in_threadpool(registry.get, request.path_params["ref"]))

    async def decide(request: Request, actor: str) -> Response:
        body = _body(await read_json(request, gateway))
        ref = f"{request.path_params['model']}:{request.path_params['version']}"
        version = await run_in_threadpool(
            lambda: registry.decide(
                ref,
                actor=actor,
                decision=str(body.get("decision", "approve")),
                alias=str(body.get("alias", "production")),
                comment=body.get("comment"),
            )
        )
        missing = await run_in_threadpool(
            registry.missing, version.ref, str(body.get("alias", "production"))
        )
        return json_response({"ref": version.ref, "missing": missing})

    async def set_alias(request: Request, actor: str) -> Response:
        from shipyard.registry.service import UNSET

        body = _body(await read_json(request, gateway))
        if not isinstance(body.get("version"), int):
            raise BadRequest("'version' (a whole number) is required", 422)
        ref = f"{request.path_params['model']}:{body['version']}"
        expected = body.get("expected", UNSET)
        version = await run_in_threadpool(
            lambda: registry.set_alias(
                ref,
                request.path_params["alias"],
                actor=actor,
                expected=expected,
                reason=body.get("reason"),
            )
        )
        return json_response(version)

    async def rollback(request: Request, actor: str) -> Response:
        body = _body(await read_json(request, gateway))
        alias = str(body.get("alias", "production"))
        model = request.path_params["model"]
        if alias == "production" and gateway.project is not None:
            from shipyard.rollout import api

            result = await run_in_threadpool(
                lambda: api.rollback(
                    gateway.project, model, actor=actor, reason=f"rollback by {actor}"
                )
            )
            await run_in_threadpool(gateway.refresh)
            return json_response(result)
        version = await run_in_threadpool(
            lambda: registry.rollback(model, actor=actor, alias=alias)
        )
        return json_response(version)

    def _project() -> Any:
        if gateway.project is None:
            raise BadRequest("this gateway was started without a project: no rollouts here", 404)
        return gateway.project

    async def list_rollouts(request: Request, actor: str) -> Response:
        from shipyard.rollout import api

        return json_response(await run_in_threadpool(api.status, _project()))

    async def get_rollout(request: Request, actor: str) -> Response:
        from shipyard.rollout import api

        model = request.path_params["model"]
        return json_response((await run_in_threadpool(api.status, _project(), model))[0])

    async def start_rollout(request: Request, actor: str) -> Response:
        from shipyard.rollout import api

        body = _body(await read_json(request, gateway))
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BadRequest("'version' (a whole number) is required", 422)
        strategy = body.get("strategy")
        if strategy is not None and not isinstance(strategy, str):
            raise BadRequest("'strategy' must be a string", 422)
        project = _project()
        result = await run_in_threadpool(
            lambda: api.start_rollout(
                project, request.path_params["model"], version, actor=actor, strategy=strategy
            )
        )
        await run_in_threadpool(gateway.refresh)
        return json_response(result, 201)

    async def steer_rollout(request: Request, actor: str) -> Response:
        from shipyard.rollout import api

        action = request.path_params["action"]
        operations = {
            "pause": api.pause,
            "resume": api.resume,
            "promote": api.promote,
            "abort": api.abort,
        }
        if action not in (*operations, "rollback"):
            raise BadRequest(
                f"unknown rollout action {action!r}; use pause, resume, promote, abort or rollback",
                404,
            )
        empty = request.headers.get("content-length", "0") == "0"
        body = {} if empty else _body(await read_json(request, gateway))
        model = request.path_params["model"]
        project = _project()
        if action == "rollback":
            reason = str(body.get("reason") or f"rollback by {actor}")
            result = await run_in_threadpool(
                lambda: api.rollback(project, model, actor=actor, reason=reason)
            )
        else:
            result = await run_in_threadpool(
                lambda: operations[action](project, model, actor=actor)
            )
        await run_in_threadpool(gateway.refresh)
        return json_response(result)

    return [
        ("/admin/models", protected("read", list_models), ["GET"]),
        ("/admin/models/{ref}", protected("read", get_model), ["GET"]),
        (
            "/admin/models/{model}/versions/{version}/decision",
            protected("approve", decide),
            ["POST"],
        ),
        ("/admin/models/{model}/aliases/{alias}", protected("alias", set_alias), ["POST"]),
        ("/admin/models/{model}/rollback", protected("alias", rollback), ["POST"]),
        ("/admin/rollouts", protected("read", list_rollouts), ["GET"]),
        ("/admin/rollouts/{model}", protected("read", get_rollout), ["GET"]),
        ("/admin/rollouts/{model}", protected("deploy", start_rollout), ["POST"]),
        ("/admin/rollouts/{model}/{action}", protected("alias", steer_rollout), ["POST"]),
        ("/admin/routing", protected("read", list_routing), ["GET"]),
        ("/admin/routing/{model}", protected("read", get_routing), ["GET"]),
        ("/admin/routing/{model}", protected("deploy", put_routing), ["PUT"]),
        ("/admin/flags", protected("read", list_flags), ["GET"]),
        ("/admin/flags/{name}", protected("deploy", put_flag), ["PUT"]),
        ("/admin/reload", protected("deploy", reload), ["POST"]),
    ]

"""The ASGI app: prediction (Shipyard's v1 API and the Open Inference Protocol v2),
feedback, flags, health, metrics, OpenAPI, and the admin API.

HTTP status codes are decided here and only here: BadRequest carries its own (4xx),
NotFound is 404, a model that raises is a 500 for that request alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.errors import Conflict, NotFound, PolicyViolation, ShipyardError
from shipyard.serving import admin, oip
from shipyard.serving.gateway import Answer, Gateway
from shipyard.serving.inputs import BadRequest, decode_json, rows_from_payload, validate_rows

__all__ = ["create_app", "json_response", "read_json"]

Handler = Callable[[Request], Awaitable[Response]]


def json_response(
    data: Any, status: int = 200, background: BackgroundTask | None = None
) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status, media_type="application/json", background=background)


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


async def read_body(request: Request, gateway: Gateway) -> bytes:
    """The body, refused with 413 past the size limit and 408 past the deadline."""
    limit = gateway.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body is {declared} bytes; the limit is {limit}", 413)
    if request.headers.get("content-encoding", "identity") != "identity":
        raise BadRequest("compressed bodies are not accepted; send plain JSON", 415)

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"the body exceeds the limit of {limit} bytes", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    try:  # asyncio.timeout, not wait_for: no extra task per request (a p99 cost)
        async with asyncio.timeout(gateway.settings.request_timeout):
            return await collect()
    except TimeoutError:
        raise BadRequest("the request took too long to arrive", 408) from None


async def read_json(request: Request, gateway: Gateway) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", ""):
        raise BadRequest(f"content type {kind!r} is not accepted; send application/json", 415)
    return decode_json(await read_body(request, gateway))


def guarded(gateway: Gateway, handler: Handler) -> Handler:
    """Host allow-list, rate limit, and the mapping of errors to statuses."""

    async def endpoint(request: Request) -> Response:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        allowed = gateway.settings.allowed_hosts
        if host not in allowed and "*" not in allowed:
            gateway.metrics.rejected.labels("host").inc()
            return error(400, f"unknown Host {host!r}")
        client = request.headers.get("x-client-id") or (
            request.client.host if request.client else "-"
        )
        if gateway.settings.rate_limit and not gateway.buckets.allow(client, time.monotonic()):
            gateway.metrics.rate_limited.labels(client[:64]).inc()
            return error(429, "rate limit exceeded; slow down")
        try:
            return await handler(request)
        except BadRequest as exc:
            gateway.metrics.rejected.labels(str(exc.status)).inc()
            return error(exc.status, exc.message)
        except NotFound as exc:
            return error(404, exc.message)
        except Conflict as exc:
            return error(409, exc.message)
        except PolicyViolation as exc:
            return error(403, str(exc))
        except ShipyardError as exc:
            return error(400 if exc.exit_code == 2 else 500, exc.message)

    return endpoint


def _attributes(request: Request, names: set[str], rows: list[Any]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    first = rows[0] if rows and isinstance(rows[0], dict) else {}
    for name in names:
        kind, _, key = name.partition(":")
        value = request.headers.get(key) if kind == "header" else first.get(key)
        if value is not None:
            attributes[name] = str(value)
    return attributes


async def predict_rows(
    gateway: Gateway, request: Request, model: str, rows: list[Any], version: int | None
) -> tuple[Answer, str]:
    """Route, validate and predict; returns the answer and the client key."""
    decision = gateway.decide(
        model, _attributes(request, gateway.routed_attributes(model), rows), version
    )
    served = gateway.pool.peek(model, decision.version)
    if served is None:  # first use of a version: loading may take a while
        served = await run_in_threadpool(gateway.served, model, decision.version)
    values = validate_rows(rows, served.inputs, served.types, gateway.settings.max_rows)
    client = request.headers.get("x-client-id") or (request.client.host if request.client else "-")
    labels = (model, served.label, decision.arm)
    started = time.perf_counter()
    try:
        if gateway.batcher is not None and len(values) < gateway.batcher.max_rows:
            answer = await gateway.batcher.answer(model, decision, values, served)
        elif len(values) <= gateway.settings.inline_rows:
            answer = gateway.answer(model, decision, values, served)
        else:
            answer = await run_in_threadpool(gateway.answer, model, decision, values, served)
    except Exception as exc:  # the model's own failure: this request only
        gateway.metrics.errors.labels(*labels).inc()
        gateway.metrics.requests.labels(*labels, "500").inc()
        gateway.record_error(
            model, served, decision.arm, client, time.perf_counter() - started, exc
        )
        raise ShipyardError(f"model {model}:{served.label} failed on this input: {exc}") from None
    gateway.metrics.requests.labels(*labels, "200").inc()
    gateway.metrics.latency.labels(*labels).observe(answer.seconds)
    return answer, client


def shadow_task(
    gateway: Gateway, request: Request, model: str, answer: Answer, client: str
) -> BackgroundTask | None:
    if not answer.decision.shadows:
        return None

    async def run() -> None:
        for version in answer.decision.shadows:
            served = None
            started = time.perf_counter()
            try:
                served = await run_in_threadpool(gateway.served, model, version)
                started = time.perf_counter()
                copy = await run_in_threadpool(
                    gateway.answer, model, answer.decision, answer.rows, served
                )
                copy.request_id = answer.request_id
                gateway.record(model, copy, client, arm="shadow")
                gateway.metrics.shadow.labels(model, str(version), "ok").inc()
            except Exception as exc:  # a shadow failure never reaches the user
                gateway.metrics.shadow.labels(model, str(version), "error").inc()
                if served is not None:  # counted in the shadow report's error rate
                    seconds = time.perf_counter() - started
                    gateway.record_error(model, served, "shadow", client, seconds, exc)

    return BackgroundTask(run)


def v1_predict(gateway: Gateway) -> Handler:
    async def handler(request: Request) -> Response:
        model = request.path_params["model"]
        version = request.query_params.get("version")
        pinned = int(version) if version and version.isdigit() else None
        rows = rows_from_payload(await read_json(request, gateway))
        answer, client = await predict_rows(gateway, request, model, rows, pinned)
        gateway.record(model, answer, client)
        body: dict[str, Any] = {
            "model": model,
            "version": answer.served.version.version,
            "arm": answer.decision.arm,
            "request_id": answer.request_id,
            "predictions": answer.predictions,
        }
        if answer.probabilities is not None:
            body["probabilities"] = answer.probabilities
        return json_response(body, background=shadow_task(gateway, request, model, answer, client))

    return handler


def v1_feedback(gateway: Gateway) -> Handler:
    async def handler(request: Request) -> Response:
        payload = await read_json(request, gateway)
        items = (
            payload.get("feedback")
            if isinstance(payload, dict) and "feedback" in payload
            else [payload]
        )
        if not isinstance(items, list) or not items:
            raise BadRequest("send {'request_id': ..., 'label': ...} or {'feedback': [...]}")
        now = time.time()
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("request_id"), str):
                raise BadRequest(f"feedback {index}: 'request_id' (a string) is required", 422)
            if (
                "label" not in item
                or isinstance(item["label"], dict | list)
                or item["label"] is None
            ):
                raise BadRequest(f"feedback {index}: 'label' (a number or string) is required", 422)
            row = item.get("row", 0)
            if not isinstance(row, int) or isinstance(row, bool) or row < 0:
                raise BadRequest(f"feedback {index}: 'row' must be a whole number >= 0", 422)
        if gateway.log is not None:
            for item in items:
                gateway.log.append(
                    "feedback",
                    {
                        "ts": now,
                        "request_id": item["request_id"],
                        "row": item.get("row", 0),
                        "label": str(item["label"]),
                        "model": str(item.get("model", "_")),
                    },
                )
        return json_response({"accepted": len(items)}, 202)

    return handler


def flags_evaluate(gateway: Gateway) -> Handler:
    async def handler(request: Request) -> Response:
        from shipyard.core.flags import evaluate

        name = request.path_params["name"]
        flag = gateway.snapshot.flags.get(name)
        if flag is None:
            raise NotFound(f"no flag named '{name}'")
        payload = await read_json(request, gateway)
        if not isinstance(payload, dict):
            raise BadRequest("send {'targetingKey': ..., 'context': {...}}")
        context = payload.get("context") or {}
        if not isinstance(context, dict):
            raise BadRequest("'context' must be an object")
        attributes = {str(k): str(v) for k, v in context.items()}
        result = evaluate(flag, attributes, payload.get("targetingKey"))
        return json_response(
            {
                "flag": name,
                "variant": result.variant,
                "value": result.value,
                "reason": result.reason,
            }
        )

    return handler


def health(gateway: Gateway, ready: bool) -> Handler:
    async def handler(request: Request) -> Response:
        if ready and not gateway.ready:
            return error(503, "models are still loading")
        return json_response({"status": "ok"})

    return handler


def metrics_endpoint(gateway: Gateway) -> Handler:
    async def handler(request: Request) -> Response:
        if gateway.log is not None:
            gateway.metrics.log_dropped.set(gateway.log.dropped)
        body, kind = gateway.metrics.render()
        return Response(body, media_type=kind)

    return handler


def create_app(gateway: Gateway, *, admin_api: bool = True) -> Starlette:
    """The Starlette app over a started (or startable) Gateway; ``admin_api=False``
    leaves the admin routes out entirely (a bundle's container, which only serves)."""
    from shipyard.dashboard import Dashboard
    from shipyard.serving.openapi import openapi_handler

    g = gateway

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, guarded(g, handler), methods=methods)

    routes = [
        route("/v1/models/{model}/predict", v1_predict(g), ["POST"]),
        route("/v1/feedback", v1_feedback(g), ["POST"]),
        route("/v1/flags/{name}/evaluate", flags_evaluate(g), ["POST"]),
        route("/healthz", health(g, ready=False), ["GET"]),
        route("/readyz", health(g, ready=True), ["GET"]),
        route("/metrics", metrics_endpoint(g), ["GET"]),
        route("/openapi.json", openapi_handler(g), ["GET"]),
        *[route(p, h, m) for p, h, m in oip.routes(g)],
        *([route(p, h, m) for p, h, m in admin.routes(g)] if admin_api else []),
        *(Dashboard.for_gateway(g).routes() if admin_api else []),  # /ui, its own guards
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not g.ready:
            await run_in_threadpool(g.start)
        yield
        await run_in_threadpool(g.stop)

    return Starlette(routes=routes, lifespan=lifespan)

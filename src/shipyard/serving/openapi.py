"""OpenAPI 3.1 description of the gateway, generated from its routes and the signatures
of the models it serves."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["build_openapi", "openapi_handler"]

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _record_schema(inputs: list[str], types: dict[str, str]) -> dict[str, Any]:
    props = {
        name: {"type": "string"}
        if types.get(name) == "string"
        else {"type": "number"}
        if types.get(name) == "number"
        else {"type": ["number", "string"]}
        for name in inputs
    }
    return {
        "type": "object",
        "properties": props,
        "required": inputs,
        "additionalProperties": False,
    }


def build_openapi(gateway: Any) -> dict[str, Any]:
    from shipyard import __version__

    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for code, text in (
            (400, "Malformed request"),
            (404, "Unknown model or version"),
            (413, "Body or batch too large"),
            (415, "Not JSON"),
            (422, "Does not match the model's signature"),
        )
    }
    paths: dict[str, Any] = {}
    served = {m: gateway.pool.peek(m, v) for m, v in gateway.pool.loaded()}
    for model, entry in sorted(served.items()):
        if entry is None:
            continue
        record = _record_schema(entry.inputs, entry.types)
        paths[f"/v1/models/{model}/predict"] = {
            "post": {
                "summary": f"Predict with {model}",
                "operationId": f"predict_{model}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    record,
                                    {"type": "array", "items": record, "minItems": 1},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "instances": {"type": "array", "items": record}
                                        },
                                        "required": ["instances"],
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Predictions",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["model", "version", "request_id", "predictions"],
                                    "properties": {
                                        "model": {"type": "string"},
                                        "version": {"type": "integer"},
                                        "arm": {"type": "string"},
                                        "request_id": {"type": "string"},
                                        "predictions": {"type": "array"},
                                        "probabilities": {"type": "array"},
                                    },
                                }
                            }
                        },
                    },
                    **errors,
                },
            }
        }
    paths["/v1/feedback"] = {
        "post": {
            "summary": "Record ground truth for a request",
            "operationId": "feedback",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["request_id", "label"],
                            "properties": {
                                "request_id": {"type": "string"},
                                "label": {"type": ["number", "string"]},
                                "row": {"type": "integer", "minimum": 0},
                                "model": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {"202": {"description": "Accepted"}, **errors},
        }
    }
    for path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"):
        paths[path] = {"get": {"summary": "Health", "responses": {"200": {"description": "OK"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shipyard gateway", "version": __version__},
        "paths": paths,
    }


def openapi_handler(gateway: Any) -> Any:
    async def handler(request: Request) -> Response:
        from shipyard.serving.app import json_response

        return json_response(build_openapi(gateway))

    return handler

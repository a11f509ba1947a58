"""The Open Inference Protocol (KServe v2 REST), so KServe/Triton/MLServer clients work.

``/v2/health/live|ready``, ``/v2/models/{name}[/versions/{v}]`` metadata and readiness,
and ``.../infer``. Inputs are either one tensor of shape [rows, features] (columns in
signature order) or one tensor per feature named like the signature's inputs.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shipyard.serving.inputs import BadRequest

__all__ = ["routes"]

_DATATYPES = {"i": "INT64", "u": "UINT64", "f": "FP64", "b": "BOOL", "O": "BYTES", "U": "BYTES"}


def _tensor(name: str, values: Any) -> dict[str, Any]:
    import numpy as np

    array = np.asarray(values)
    datatype = _DATATYPES.get(array.dtype.kind, "BYTES")
    data = array.astype(str) if datatype == "BYTES" else array
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": data.ravel().tolist(),
    }


def _rows(payload: Any, inputs: list[str]) -> list[list[Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise BadRequest("an inference request needs an 'inputs' list of tensors")
    tensors = payload["inputs"]
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list):
            raise BadRequest(f"inputs[{index}] needs 'name', 'shape', 'datatype' and 'data'")
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequest(f"inputs[{index}].shape must be a list of sizes")
    if len(tensors) == 1 and len(tensors[0]["shape"]) == 2:
        (tensor,) = tensors
        rows, width = tensor["shape"]
        data = _flatten(tensor["data"])
        if rows * width != len(data):
            raise BadRequest(
                f"inputs[0] has {len(data)} values; shape {tensor['shape']} needs {rows * width}"
            )
        return [data[i * width : (i + 1) * width] for i in range(rows)]
    by_name = {t.get("name"): _flatten(t["data"]) for t in tensors}
    missing = [n for n in inputs if n not in by_name]
    if missing:
        raise BadRequest(f"missing input tensor(s) {missing}; the model takes {inputs}", 422)
    lengths = {len(by_name[n]) for n in inputs}
    if len(lengths) != 1:
        raise BadRequest("input tensors must all have the same number of rows", 422)
    (count,) = lengths
    return [[by_name[n][i] for n in inputs] for i in range(count)]


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        else:
            flat.append(item)
    return flat


def routes(gateway: Any) -> list[tuple[str, Any, list[str]]]:
    from shipyard.serving.app import json_response, predict_rows, read_json

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        return json_response({"ready": gateway.ready}, 200 if gateway.ready else 503)

    async def server(request: Request) -> Response:
        from shipyard import __version__

        return json_response({"name": "shipyard", "version": __version__, "extensions": []})

    def _version(request: Request) -> int | None:
        raw = request.path_params.get("version")
        if raw is None:
            return None
        if not str(raw).isdigit():
            raise BadRequest(f"version {raw!r} must be a number", 400)
        return int(raw)

    async def metadata(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        name = request.path_params["model"]
        pinned = _version(request)
        number = pinned if pinned is not None else gateway.decide(name, {}).version
        served = await run_in_threadpool(gateway.served, name, number)
        types = served.types
        return json_response(
            {
                "name": name,
                "versions": [str(number)],
                "platform": served.version.format,
                "inputs": [
                    {
                        "name": n,
                        "datatype": "BYTES" if types.get(n) == "string" else "FP64",
                        "shape": [-1],
                    }
                    for n in served.inputs
                ],
                "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
            }
        )

    async def model_ready(request: Request) -> Response:
        name = request.path_params["model"]
        number = _version(request) or gateway.decide(name, {}).version
        loaded = gateway.pool.peek(name, number) is not None
        return json_response({"name": name, "ready": loaded}, 200 if loaded else 503)

    async def infer(request: Request) -> Response:
        name = request.path_params["model"]
        payload = await read_json(request, gateway)
        pinned = _version(request)
        number = pinned if pinned is not None else gateway.decide(name, {}).version
        from starlette.concurrency import run_in_threadpool

        served = await run_in_threadpool(gateway.served, name, number)
        rows = _rows(payload, served.inputs)
        answer, client = await predict_rows(gateway, request, name, rows, pinned)
        gateway.record(name, answer, client)
        outputs = [_tensor("predict", answer.predictions)]
        if answer.probabilities is not None:
            outputs.append(_tensor("predict_proba", answer.probabilities))
        request_id = payload.get("id") if isinstance(payload.get("id"), str) else answer.request_id
        return json_response(
            {
                "model_name": name,
                "model_version": str(answer.served.version.version),
                "id": request_id,
                "outputs": outputs,
            }
        )

    return [
        ("/v2", server, ["GET"]),
        ("/v2/health/live", live, ["GET"]),
        ("/v2/health/ready", ready, ["GET"]),
        ("/v2/models/{model}", metadata, ["GET"]),
        ("/v2/models/{model}/ready", model_ready, ["GET"]),
        ("/v2/models/{model}/versions/{version}", metadata, ["GET"]),
        ("/v2/models/{model}/versions/{version}/ready", model_ready, ["GET"]),
        ("/v2/models/{model}/infer", infer, ["POST"]),
        ("/v2/models/{model}/versions/{version}/infer", infer, ["POST"]),
    ]

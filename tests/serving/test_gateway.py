"""The gateway over HTTP (in-process ASGI): shapes, routing, shadows, flags, log, metrics."""

from __future__ import annotations

import asyncio
import math

import pytest

from shipyard.core.flags import flag_from_json
from shipyard.core.routing import Arm, RoutingTable
from shipyard.serving.predlog import read_log

ROW = {"a": 0.5, "b": -1.0, "c": 2.0}


def run(coro):
    return asyncio.run(coro)


async def post(served, path, json=None, **kwargs):
    async with served.client() as client:
        return await client.post(path, json=json, **kwargs)


@pytest.mark.parametrize(
    "payload",
    [
        ROW,
        [ROW, ROW],
        {"instances": [ROW, ROW]},
        {"instances": [[0.5, -1.0, 2.0]]},
        {"inputs": {"a": [0.5, 1.0], "b": [-1.0, 0.0], "c": [2.0, 1.0]}},
        {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[0.5, -1.0, 2.0]]}},
        {"dataframe_records": [ROW]},
    ],
    ids=["record", "list", "instances", "instances-rows", "inputs-columns", "split", "records"],
)
def test_common_payload_shapes_are_accepted(served, payload):
    response = run(post(served, "/v1/models/m/predict", payload))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "m" and body["version"] == 3 and len(body["request_id"]) == 32
    assert len(body["predictions"]) == len(body["probabilities"]) >= 1


def test_open_inference_protocol(served):
    async def go():
        async with served.client() as client:
            assert (await client.get("/v2/health/ready")).json() == {"ready": True}
            meta = (await client.get("/v2/models/m")).json()
            assert [i["name"] for i in meta["inputs"]] == ["a", "b", "c"]
            tensor = {
                "name": "x",
                "shape": [2, 3],
                "datatype": "FP64",
                "data": [0.5, -1.0, 2.0, 1.0, 0.0, 1.0],
            }
            result = await client.post(
                "/v2/models/m/versions/1/infer", json={"id": "r1", "inputs": [tensor]}
            )
            assert result.status_code == 200, result.text
            body = result.json()
            assert body["model_version"] == "1" and body["id"] == "r1"
            assert body["outputs"][0]["shape"] == [2] and body["outputs"][1]["shape"] == [2, 2]
            per_column = [
                {"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in ROW.items()
            ]
            assert (
                await client.post("/v2/models/m/infer", json={"inputs": per_column})
            ).status_code == 200

    run(go())


def test_weighted_split_is_within_the_binomial_interval(served):
    served.control.set_table(RoutingTable("m", (Arm(1, 90.0), Arm(2, 10.0))), actor="dev")
    served.gateway.refresh()
    n = 10_000

    async def go():
        counts = {1: 0, 2: 0}
        async with served.client() as client:
            for _ in range(n // 50):
                batch = await asyncio.gather(
                    *[client.post("/v1/models/m/predict", json=ROW) for _ in range(50)]
                )
                for response in batch:
                    counts[response.json()["version"]] += 1
        return counts

    counts = run(go())
    expected, sd = n * 0.1, math.sqrt(n * 0.1 * 0.9)
    assert abs(counts[2] - expected) <= 3.29 * sd, counts  # 99.9 % two-sided


def test_sticky_users_never_switch_arms(served):
    served.control.set_table(
        RoutingTable("m", (Arm(1, 50.0), Arm(2, 50.0)), sticky="header:x-user-id"), actor="dev"
    )
    served.gateway.refresh()

    async def go():
        seen: dict[str, set[int]] = {}
        async with served.client() as client:
            for i in range(300):
                user = f"user-{i % 30}"
                response = await client.post(
                    "/v1/models/m/predict", json=ROW, headers={"x-user-id": user}
                )
                seen.setdefault(user, set()).add(response.json()["version"])
        return seen

    seen = run(go())
    assert all(len(v) == 1 for v in seen.values())
    assert {next(iter(v)) for v in seen.values()} == {1, 2}


def test_shadow_is_logged_and_never_returned(served):
    served.control.set_table(RoutingTable("m", (Arm(1, 100.0),), shadows=(2,)), actor="dev")
    served.gateway.refresh()
    responses = [run(post(served, "/v1/models/m/predict", ROW)).json() for _ in range(5)]
    assert {r["version"] for r in responses} == {1}
    served.gateway.log.flush()
    log = read_log(served.gateway.log.root, model="m")
    shadow = log[log["arm"] == "shadow"]
    assert len(shadow) == 5 and set(shadow["version"]) == {2}
    assert set(shadow["request_id"]) == {r["request_id"] for r in responses}


def test_a_flag_changes_routing_live(served):
    served.control.set_flag(
        flag_from_json(
            {
                "name": "beta",
                "variants": {"old": 1, "new": 2},
                "default": "old",
                "rules": [{"variant": "new", "match": {"header:x-plan": ["beta"]}}],
            }
        ),
        actor="dev",
    )
    served.control.set_table(RoutingTable("m", (Arm(1, 100.0),), flag="beta"), actor="dev")
    served.gateway.refresh()
    beta = run(post(served, "/v1/models/m/predict", ROW, headers={"x-plan": "beta"})).json()
    other = run(post(served, "/v1/models/m/predict", ROW, headers={"x-plan": "free"})).json()
    assert (beta["version"], other["version"]) == (2, 1)
    served.control.set_flag(
        flag_from_json({"name": "beta", "variants": {"old": 1, "new": 2}, "default": "new"}),
        actor="dev",
    )
    served.gateway.refresh()
    assert run(post(served, "/v1/models/m/predict", ROW)).json()["version"] == 2
    evaluated = run(post(served, "/v1/flags/beta/evaluate", {"targetingKey": "u1", "context": {}}))
    assert evaluated.json() == {"flag": "beta", "variant": "new", "value": 2, "reason": "DEFAULT"}


def test_feedback_joins_the_prediction_log(served):
    answer = run(post(served, "/v1/models/m/predict", [ROW, ROW])).json()
    accepted = run(
        post(
            served,
            "/v1/feedback",
            {
                "feedback": [
                    {"request_id": answer["request_id"], "row": 0, "label": 1, "model": "m"},
                    {"request_id": answer["request_id"], "row": 1, "label": 0, "model": "m"},
                ]
            },
        )
    )
    assert accepted.status_code == 202
    served.gateway.log.flush()
    root = served.gateway.log.root
    joined = read_log(root, "predictions", "m").merge(
        read_log(root, "feedback", "m"), on=["request_id", "row"]
    )
    assert sorted(joined["label"]) == ["0", "1"] and set(joined["in_a"]) == {0.5}


def test_metrics_are_prometheus_text_and_consistent(served):
    for _ in range(3):
        run(post(served, "/v1/models/m/predict", ROW))
    run(post(served, "/v1/models/m/predict", {"a": "x"}))

    async def scrape():
        async with served.client() as client:
            return (await client.get("/metrics")).text

    text = run(scrape())
    assert 'shipyard_requests_total{arm="default",code="200",model="m",version="3"} 3.0' in text
    lines = text.splitlines()
    inf = next(x for x in lines if "latency_seconds_bucket" in x and "+Inf" in x)
    count = next(x for x in lines if "latency_seconds_count" in x)
    assert inf.split()[-1] == count.split()[-1]
    assert "process_cpu_seconds_total" in text
    assert 'shipyard_rejected_requests_total{reason="422"} 1.0' in text


def test_unknown_model_and_version_are_404(served):
    assert run(post(served, "/v1/models/nope/predict", ROW)).status_code == 404
    assert run(post(served, "/v1/models/m/predict?version=99", ROW)).status_code == 404


def test_a_model_that_raises_fails_only_that_request(served, monkeypatch):
    served_model = served.gateway.pool.get("m", 3)
    real = served_model.loaded.predict

    def flaky(frame):
        if (frame["a"] == 13.0).any():
            raise ValueError("unlucky row")
        return real(frame)

    monkeypatch.setattr(served_model.loaded, "predict", flaky)
    bad = run(post(served, "/v1/models/m/predict", {"a": 13.0, "b": 0, "c": 0}))
    assert bad.status_code == 500 and "unlucky row" in bad.json()["error"]
    assert run(post(served, "/v1/models/m/predict", ROW)).status_code == 200


def test_micro_batching_groups_concurrent_requests(tmp_path, make_served, monkeypatch):
    served = make_served(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", micro_batch_ms=20)
    model = served.gateway.pool.get("m", 3)
    calls: list[int] = []
    real = model.loaded.predict

    def counting(frame):
        calls.append(len(frame))
        if (frame["a"] == 13.0).any() and len(frame) > 1:
            raise ValueError("bad row in the group")
        return real(frame)

    monkeypatch.setattr(model.loaded, "predict", counting)

    async def go():
        async with served.client() as client:
            rows = [ROW] * 15 + [{"a": 13.0, "b": 0.0, "c": 0.0}]
            return await asyncio.gather(
                *[client.post("/v1/models/m/predict", json=r) for r in rows]
            )

    responses = run(go())
    assert [r.status_code for r in responses[:15]] == [200] * 15
    assert len({r.json()["request_id"] for r in responses[:15]}) == 15
    assert max(calls) > 1  # requests were grouped
    assert responses[15].status_code == 200  # answered alone after the group failed

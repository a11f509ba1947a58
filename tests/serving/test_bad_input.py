"""The bad-input corpus (RELIABILITY.md): each gets a 4xx naming the problem, and the
gateway keeps serving."""

from __future__ import annotations

import asyncio
import json

from shipyard.serving.admin import POLICY

GOOD = {"a": 0.5, "b": -1.0, "c": 2.0}
CORPUS = [
    ("empty", b"", "application/json", 400, "empty"),
    ("null", b"null", "application/json", 400, "JSON object"),
    ("truncated", b'{"a": 1, "b":', "application/json", 400, "malformed JSON"),
    ("bom", b'\xef\xbb\xbf{"a": 1}', "application/json", 400, "malformed JSON"),
    ("utf16", json.dumps(GOOD).encode("utf-16"), "application/json", 400, "UTF-8"),
    ("invalid-utf8", b'{"a": "\xff\xfe"}', "application/json", 400, "UTF-8"),
    ("lone-surrogate", b'{"a": "\\ud800", "b": 1, "c": 1}', "application/json", 422, "surrogate"),
    ("nul", b'{"a": "x\\u0000", "b": 1, "c": 1}', "application/json", 422, "NUL"),
    ("text-plain", json.dumps(GOOD).encode(), "text/plain", 415, "application/json"),
    ("form", b"a=1&b=2&c=3", "application/x-www-form-urlencoded", 415, "application/json"),
    ("pickle", b"\x80\x04K\x01.", "application/python-pickle", 415, "application/json"),
    ("number-as-bool", b'{"a": true, "b": 1, "c": 1}', "application/json", 422, "field 'a'"),
    ("ragged", b'{"instances": [[1, 2, 3], [1, 2]]}', "application/json", 422, "row 1 has 2"),
    ("wrong-count", b"[[1, 2]]", "application/json", 422, "takes 3"),
    ("duplicate-keys", b'{"a": 1, "a": 2, "b": 1, "c": 1}', "application/json", 400, "duplicate"),
    ("missing-field", b'{"a": 1, "b": 1}', "application/json", 422, "missing ['c']"),
    ("extra-field", b'{"a": 1, "b": 1, "c": 1, "d": 1}', "application/json", 422, "unknown ['d']"),
    ("nan", b'{"a": NaN, "b": 1, "c": 1}', "application/json", 400, "NaN"),
    ("infinity", b'{"a": Infinity, "b": 1, "c": 1}', "application/json", 400, "Infinity"),
    ("huge-float", b'{"a": 1e309, "b": 1, "c": 1}', "application/json", 422, "finite"),
    ("huge-int", b'{"a": ' + b"9" * 5000 + b', "b": 1, "c": 1}', "application/json", 400, "JSON"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "too deeply"),
    ("empty-batch", b'{"instances": []}', "application/json", 422, "empty"),
    ("null-value", b'{"a": null, "b": 1, "c": 1}', "application/json", 422, "null"),
    ("nested-value", b'{"a": [1], "b": 1, "c": 1}', "application/json", 422, "field 'a'"),
]


def test_bad_input_corpus(served):
    async def go():
        async with served.client() as client:
            for name, body, kind, status, words in CORPUS:
                response = await client.post(
                    "/v1/models/m/predict", content=body, headers={"content-type": kind}
                )
                assert response.status_code == status, (name, response.text)
                assert words in response.json()["error"], (name, response.text)
                ok = await client.post("/v1/models/m/predict", json=GOOD)
                assert ok.status_code == 200, name

    asyncio.run(go())


def test_oversized_body_and_batch_are_refused_before_parsing(served):
    big = b'{"instances": [' + b",".join([b'{"a": 1, "b": 1, "c": 1}'] * 20_001) + b"]}"

    async def go():
        async with served.client() as client:
            too_many = await client.post(
                "/v1/models/m/predict", content=big, headers={"content-type": "application/json"}
            )
            assert too_many.status_code == 413 and "limit is 10000" in too_many.json()["error"]
            declared = await client.post(
                "/v1/models/m/predict",
                content=b"{}",
                headers={"content-type": "application/json", "content-length": str(100 * 2**20)},
            )
            assert declared.status_code == 413
            gzip = await client.post(
                "/v1/models/m/predict",
                content=b"\x1f\x8b",
                headers={"content-type": "application/json", "content-encoding": "gzip"},
            )
            assert gzip.status_code == 415

    asyncio.run(go())


def test_unknown_host_is_refused(served):
    async def go():
        async with served.client() as client:
            response = await client.post(
                "/v1/models/m/predict", json=GOOD, headers={"host": "evil.example"}
            )
            assert response.status_code == 400 and "Host" in response.json()["error"]

    asyncio.run(go())


def test_every_route_is_in_the_policy_table(served):
    from starlette.routing import Route

    routes = {
        (m, r.path)
        for r in served.app.routes
        if isinstance(r, Route)
        for m in r.methods
        if m != "HEAD"
    }
    assert routes == set(POLICY)


def test_admin_needs_a_token_with_the_right_role(served):
    users = served.registry.users
    users.add("root", "admin", actor="root")
    users.add("viewer1", "viewer", actor="root")
    admin_token = users.create_token("root", name="t", actor="root")
    viewer_token = users.create_token("viewer1", name="t", actor="root")
    table = {"arms": [{"version": 1, "weight": 100}]}

    async def go():
        async with served.client() as client:
            put = client.put
            assert (await put("/admin/routing/m", json=table)).status_code == 401
            assert (
                await put(
                    "/admin/routing/m",
                    json=table,
                    headers={"authorization": f"Bearer {viewer_token}"},
                )
            ).status_code == 403
            assert (
                await put(f"/admin/routing/m?token={admin_token}", json=table)
            ).status_code == 400
            auth = {"authorization": f"Bearer {admin_token}"}
            assert (
                await put(
                    "/admin/routing/m",
                    content=json.dumps(table),
                    headers={**auth, "content-type": "text/plain"},
                )
            ).status_code == 415
            assert (
                await put(
                    "/admin/routing/m",
                    json=table,
                    headers={**auth, "origin": "http://evil.example"},
                )
            ).status_code == 403
            bad = await put(
                "/admin/routing/m", json={"arms": [{"version": 1, "weight": 50}]}, headers=auth
            )
            assert bad.status_code == 422 and "add up to 100" in bad.json()["error"]
            good = await put("/admin/routing/m", json=table, headers=auth)
            assert good.status_code == 200, good.text
            assert (await client.post("/v1/models/m/predict", json=GOOD)).json()["version"] == 1
            listed = await client.get(
                "/admin/routing", headers={"authorization": f"Bearer {viewer_token}"}
            )
            assert listed.status_code == 200 and "m" in listed.json()

    asyncio.run(go())

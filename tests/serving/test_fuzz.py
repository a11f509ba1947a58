"""Fuzzing the prediction API: whatever arrives, the answer is JSON with a 2xx or 4xx."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
records = st.fixed_dictionaries({}, optional={k: values for k in ("a", "b", "c", "d")})
payloads = st.one_of(
    values,
    records,
    st.lists(records, max_size=5),
    st.fixed_dictionaries(
        {"instances": st.lists(st.one_of(records, st.lists(values, max_size=4)), max_size=4)}
    ),
    st.fixed_dictionaries(
        {
            "inputs": st.one_of(
                values,
                st.dictionaries(st.sampled_from("abcd"), st.lists(values, max_size=3), max_size=4),
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "dataframe_split": st.fixed_dictionaries(
                {
                    "columns": st.lists(st.sampled_from("abcd"), max_size=4),
                    "data": st.lists(st.lists(values, max_size=4), max_size=3),
                }
            )
        }
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=payloads)
def test_any_json_gets_a_json_answer_and_never_a_500(served, payload):
    async def go():
        async with served.client() as client:
            response = await client.post(
                "/v1/models/m/predict",
                content=json.dumps(payload),
                headers={"content-type": "application/json"},
            )
            assert response.status_code in (200, 400, 413, 415, 422), response.text
            assert isinstance(response.json(), dict)

    asyncio.run(go())


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_cleanly(served, body):
    async def go():
        async with served.client() as client:
            response = await client.post(
                "/v1/models/m/predict", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code in (200, 400, 422), response.text

    asyncio.run(go())


def test_rate_limit_refuses_a_burst_and_counts_it(tmp_path, make_served):
    served = make_served(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", rate_limit=1.0, rate_burst=3
    )
    row = {"a": 0.5, "b": -1.0, "c": 2.0}

    async def go():
        async with served.client() as client:
            codes = [
                (
                    await client.post(
                        "/v1/models/m/predict", json=row, headers={"x-client-id": "scraper"}
                    )
                ).status_code
                for _ in range(6)
            ]
            other = await client.post(
                "/v1/models/m/predict", json=row, headers={"x-client-id": "someone-else"}
            )
            metrics = (await client.get("/metrics", headers={"x-client-id": "monitor"})).text
        return codes, other.status_code, metrics

    codes, other, metrics = asyncio.run(go())
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    assert other == 200
    assert 'shipyard_rate_limited_total{client="scraper"}' in metrics

"""Shared fixtures: every store test runs against every backend.

SQLite and a local folder always run. PostgreSQL and S3 run when their servers are
reachable (``SHIPYARD_TEST_POSTGRES_URL``, ``SHIPYARD_TEST_S3_ENDPOINT``; `.ci/run` and
`scripts/services.sh start` provide both). Under CI (``CI=true``) a missing server is a
failure, not a skip, so a broken service set-up cannot pass silently.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
S3_ENDPOINT = os.environ.get("SHIPYARD_TEST_S3_ENDPOINT")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(value: str | None, name: str) -> str:
    if value:
        return value
    if IN_CI:
        pytest.fail(f"{name} is not set: .ci/run must start this service")
    pytest.skip(f'{name} not set (run `eval "$(scripts/services.sh start)"`)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import sqlalchemy as sa

    base = sa.engine.make_url(_require(POSTGRES_URL, "SHIPYARD_TEST_POSTGRES_URL"))
    base = base.set(drivername="postgresql+psycopg")
    name = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One contract, all backends: each metadata test runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the local S3-protocol server, as an s3:// URL with a prefix."""
    endpoint = _require(S3_ENDPOINT, "SHIPYARD_TEST_S3_ENDPOINT")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    import s3fs

    bucket = f"shipyard-{secrets.token_hex(4)}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/artifacts"


@pytest.fixture(params=["local", "s3"])
def artifact_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One contract, all backends: each artifact test runs on a folder and on S3."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3_url")


def make_sklearn_model(folder: Path, seed: int = 0) -> Path:
    """A small scikit-learn model saved with skops, plus its signature."""
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    labels = (features["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(LogisticRegression().fit(features, labels), folder / "model.skops")
    (folder / "signature.json").write_text('{"inputs": ["a", "b", "c"], "output": "y"}')
    return folder


@pytest.fixture
def make_model():
    return make_sklearn_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_sklearn_model(tmp_path / "model")

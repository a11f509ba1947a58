"""``shipyard package MODEL:N``: a build context that serves one model version.

The context holds a self-contained Shipyard project (``app/``: its own SQLite registry
with just this version, under the same version number, and the model in its artifact
store), pinned requirements for the model's format, a wheel of this Shipyard, and a
multi-stage Dockerfile (slim Python base, non-root user, health check, the gateway as
entry point with the admin API off). When a Docker-compatible builder answers, the
image is built; otherwise the context is still written and the report says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from shipyard.errors import ShipyardError, UsageError
from shipyard.project import Project

__all__ = ["Bundle", "image_tag", "package_version", "requirements_for"]

_CORE = [
    "pyyaml",
    "pydantic",
    "pydantic-core",
    "sqlalchemy",
    "alembic",
    "blake3",
    "fsspec",
    "psutil",
    "numpy",
    "pandas",
    "scipy",
    "starlette",
    "uvicorn",
    "prometheus-client",
    "pyarrow",
    "orjson",
    "anyio",
    "h11",
    "click",
    "typing-extensions",
    "annotated-types",
    "mako",
    "markupsafe",
    "python-dateutil",
    "pytz",
    "tzdata",
    "six",
    "idna",
    "sniffio",
    "greenlet",
    "joblib",
    "threadpoolctl",
    "typing-inspection",
]
_FORMAT_PACKAGES = {
    "sklearn": ["scikit-learn", "skops", "packaging", "prettytable", "wcwidth"],
    "pickle": ["scikit-learn", "joblib"],
    "onnx": [
        "onnxruntime",
        "flatbuffers",
        "protobuf",
        "coloredlogs",
        "humanfriendly",
        "sympy",
        "mpmath",
    ],
    "xgboost": ["xgboost-cpu", "xgboost"],
    "lightgbm": ["lightgbm"],
    "torchscript": ["torch"],
    "safetensors": ["torch", "safetensors"],
    "pyfunc": [],
}

DOCKERFILE = """\
# Built by `shipyard package`: serves {model}:{version} ({format}) on port 8080.
FROM python:{python}-slim AS build
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
COPY wheels /tmp/wheels
RUN /opt/venv/bin/pip install --no-cache-dir --find-links /tmp/wheels -r /tmp/requirements.txt

FROM python:{python}-slim
RUN useradd --system --create-home --uid 10001 shipyard
COPY --from=build /opt/venv /opt/venv
COPY --chown=shipyard:shipyard app /app
USER shipyard
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \\
  CMD ["python", "/app/healthcheck.py"]
CMD ["shipyard", "serve", "--host", "0.0.0.0", "--port", "8080", "--no-admin", \\
     "--allow-host", "*"]
"""


HEALTHCHECK = """\
import sys
import urllib.request

try:
    urllib.request.urlopen("http://127.0.0.1:8080/readyz", timeout=2)
except OSError:
    sys.exit(1)
"""


@dataclass
class Bundle:
    path: Path
    model: str
    version: int
    format: str
    requirements: list[str] = field(default_factory=list)
    image: str | None = None
    build_note: str = ""


def requirements_for(fmt: str) -> list[str]:
    """``name==version`` for what serving this format needs, as installed here."""
    pins = []
    for name in [*_CORE, *_FORMAT_PACKAGES.get(fmt, [])]:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue  # optional companions (e.g. only one xgboost distribution exists)
    return pins


def _shipyard_wheel(target: Path) -> str:
    """A wheel of the running Shipyard, built from its source tree."""
    from shipyard import __version__

    source = Path(__file__).resolve().parents[3]
    if not (source / "pyproject.toml").exists():
        return f"shipyard-ml[serve]=={__version__}"  # installed from an index: pin it
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(target), str(source)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ShipyardError(f"could not build a wheel of Shipyard: {result.stderr[-500:]}")
    return f"shipyard-ml=={__version__}"


def _app(project: Project, ref: str, app: Path) -> tuple[str, int, str]:
    """A one-model project in ``app`` holding the version under its own number."""
    from shipyard.registry import open_registry
    from shipyard.registry.service import Registry
    from shipyard.store import open_artifacts, open_metadata

    version = open_registry(project).get(ref)
    app.mkdir(parents=True)
    (app / "shipyard.yaml").write_text(f"project: {version.model}-serving\n")
    staging = app / ".shipyard" / "incoming"
    project.artifacts.get(version.oid, staging / "model")
    metadata_store = open_metadata(f"sqlite:///{app / '.shipyard' / 'shipyard.db'}")
    try:
        bundled = Registry(metadata_store, open_artifacts(str(app / ".shipyard" / "artifacts")))
        copy = bundled.register(
            version.model,
            staging / "model",
            actor="shipyard-package",
            fmt=version.format,
            trust_pickle=version.trusted_pickle,
            signature=version.signature,
            description=version.description,
            number=version.version,
        )
        bundled.set_alias(copy.ref, "production", actor="shipyard-package", enforce=False)
    finally:
        metadata_store.close()
    shutil.rmtree(staging)
    return version.model, version.version, version.format


def package_version(project: Project, ref: str, out: Path, *, build: bool = True) -> Bundle:
    """Write the build context for ``ref`` into ``out`` (which must not exist)."""
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"'{out}' already exists and is not empty", hint="choose another --output")
    model, number, fmt = _app(project, ref, out / "app")
    requirements = [_shipyard_wheel(out / "wheels"), *requirements_for(fmt)]
    (out / "wheels").mkdir(exist_ok=True)
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (out / "Dockerfile").write_text(
        DOCKERFILE.format(model=model, version=number, format=fmt, python=python)
    )
    (out / ".dockerignore").write_text("**/__pycache__\n")
    (out / "app" / "healthcheck.py").write_text(HEALTHCHECK)
    bundle = Bundle(out, model, number, fmt, requirements)
    if build:
        _build(bundle)
    return bundle


def image_tag(model: str, version: int) -> str:
    """The tag ``shipyard package`` builds the image under."""
    return f"shipyard/{model.lower()}:{version}"


def _build(bundle: Bundle) -> None:
    docker = shutil.which("docker") or shutil.which("podman")
    if docker is None:
        bundle.build_note = "no Docker-compatible builder on this machine: context written only"
        return
    probe = subprocess.run([docker, "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        bundle.build_note = f"{Path(docker).name} is installed but no engine answers: context only"
        return
    tag = image_tag(bundle.model, bundle.version)
    result = subprocess.run(
        [docker, "build", "-t", tag, str(bundle.path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ShipyardError(f"docker build failed: {result.stderr[-800:]}")
    bundle.image = tag

"""Kubernetes manifests for a ``shipyard package`` bundle: Deployment, Service, HPA.

The Deployment runs the bundle's image as its non-root user with a read-only root
filesystem. The gateway keeps its SQLite registry, model cache and prediction log
under ``/app/.shipyard``, so an init container copies that folder from the image into
an ``emptyDir`` mounted there: the image stays immutable and the pod still has the
one writable place it needs (plus ``/tmp``). Readiness is the gateway's ``/readyz``
(true once every routed model is loaded), liveness its ``/healthz``, both on the port
the bundle's Dockerfile exposes. The HorizontalPodAutoscaler (autoscaling/v2) scales
on CPU, which is what a Python gateway runs out of first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.errors import UsageError

__all__ = ["Manifests", "build_manifests", "gateway_port", "write_manifests"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_USER_ID = 10001  # the `shipyard` user of the bundle's Dockerfile
_STATE = "/app/.shipyard"


@dataclass(frozen=True)
class Manifests:
    deployment: dict[str, Any]
    service: dict[str, Any]
    autoscaler: dict[str, Any]

    def documents(self) -> list[dict[str, Any]]:
        return [self.deployment, self.service, self.autoscaler]


def resource_name(model: str) -> str:
    """``model`` as a DNS label (lowercase, '-' for '_' and '.'), e.g. credit-risk."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:50].strip("-")
    if not _DNS_LABEL.match(name):
        raise UsageError(f"model name {model!r} gives no usable Kubernetes name")
    return name


def gateway_port(dockerfile: Path) -> int:
    """The port the bundle's Dockerfile EXPOSEs (the gateway's)."""
    found = re.search(r"^EXPOSE\s+(\d+)", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if found is None:
        raise UsageError(f"{dockerfile} has no EXPOSE line: is it a `shipyard package` bundle?")
    return int(found.group(1))


def _labels(name: str, version: int) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/version": str(version),
        "app.kubernetes.io/component": "gateway",
        "app.kubernetes.io/managed-by": "shipyard",
    }


def _container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": _USER_ID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _pod(name: str, image: str, port: int, version: int) -> dict[str, Any]:
    gateway = {
        "name": "gateway",
        "image": image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "startupProbe": _probe("/healthz", period=5, failures=24),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "state", "mountPath": _STATE},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    seed = {
        "name": "seed-state",
        "image": image,
        "command": ["cp", "-a", f"{_STATE}/.", "/state/"],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "state", "mountPath": "/state"}],
    }
    return {
        "metadata": {"labels": _labels(name, version)},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": _USER_ID,
                "fsGroup": _USER_ID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [seed],
            "containers": [gateway],
            "volumes": [
                {"name": "state", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }


def build_manifests(
    model: str, version: int, image: str, *, port: int = 8080, replicas: int = 2
) -> Manifests:
    """The three manifests for one packaged version."""
    if not _IMAGE.match(image):
        raise UsageError(f"--image {image!r} is not an image reference")
    if not 1 <= replicas <= 100:
        raise UsageError(f"--replicas {replicas} must be between 1 and 100")
    name = resource_name(model)
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "gateway"}
    meta = {"name": name, "labels": _labels(name, version)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": _pod(name, image, port, version),
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": max(replicas * 4, replicas + 2),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    return Manifests(deployment, service, autoscaler)


def write_manifests(
    bundle_path: Path, model: str, version: int, image: str, *, replicas: int = 2
) -> list[Path]:
    """Write ``k8s/deployment.yaml``, ``service.yaml`` and ``hpa.yaml`` into the bundle."""
    port = gateway_port(bundle_path / "Dockerfile")
    manifests = build_manifests(model, version, image, port=port, replicas=replicas)
    folder = bundle_path / "k8s"
    folder.mkdir(exist_ok=True)
    written = []
    for filename, document in (
        ("deployment.yaml", manifests.deployment),
        ("service.yaml", manifests.service),
        ("hpa.yaml", manifests.autoscaler),
    ):
        path = folder / filename
        path.write_text(
            f"# Written by `shipyard package --k8s` for {model}:{version}.\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=False),
            encoding="utf-8",
        )
        written.append(path)
    return written

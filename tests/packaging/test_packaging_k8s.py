"""`shipyard package --k8s`: manifests that validate against the Kubernetes schemas
(shipped inside kubernetes-validate: no network) and point the probes at the gateway."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shipyard.errors import UsageError
from shipyard.packaging.k8s import build_manifests, gateway_port, resource_name

kubernetes_validate = pytest.importorskip("kubernetes_validate")
K8S_VERSION = kubernetes_validate.utils.latest_version()


def validate(document: dict) -> None:
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_every_manifest_validates_strictly_against_the_kubernetes_schema():
    manifests = build_manifests("credit_risk", 3, "registry.local/shipyard/credit_risk:3")
    kinds = [d["kind"] for d in manifests.documents()]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for document in manifests.documents():
        validate(document)


def test_the_validator_rejects_a_broken_manifest():
    """The schema check can fail: a misspelt field and a wrong type are refused."""
    deployment = copy.deepcopy(build_manifests("m", 1, "img:1").deployment)
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    deployment = copy.deepcopy(build_manifests("m", 1, "img:1").deployment)
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


def test_probes_resources_and_security_context():
    manifests = build_manifests("credit-risk", 7, "img:7", port=9090, replicas=3)
    pod = manifests.deployment["spec"]["template"]["spec"]
    gateway = pod["containers"][0]
    assert gateway["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(gateway["resources"]) == {"requests", "limits"}
    security = gateway["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    # the only writable places are emptyDirs: the seeded state folder and /tmp
    mounts = {m["mountPath"] for m in gateway["volumeMounts"]}
    assert mounts == {"/app/.shipyard", "/tmp"}
    assert pod["initContainers"][0]["image"] == "img:7"
    selector = manifests.deployment["spec"]["selector"]["matchLabels"]
    assert manifests.service["spec"]["selector"] == selector
    assert (
        selector.items() <= manifests.deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    hpa = manifests.autoscaler["spec"]
    assert hpa["scaleTargetRef"]["name"] == manifests.deployment["metadata"]["name"]
    assert hpa["minReplicas"] == 3 and hpa["maxReplicas"] > 3
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize(
    ("model", "expected"), [("Credit_Risk", "credit-risk"), ("m.v2", "m-v2"), ("a", "a")]
)
def test_resource_names_are_dns_labels(model, expected):
    assert resource_name(model) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"image": "bad image"}, "--image"), ({"replicas": 0}, "--replicas")],
)
def test_bad_options_are_usage_errors(kwargs, message):
    arguments = {"image": "img:1", **kwargs}
    with pytest.raises(UsageError, match=message):
        build_manifests("m", 1, arguments.pop("image"), **arguments)


def test_port_comes_from_the_bundle_dockerfile(tmp_path):
    from shipyard.packaging import DOCKERFILE

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE.format(model="m", version=1, format="sklearn", python="3.11"))
    assert gateway_port(dockerfile) == 8080
    dockerfile.write_text("FROM scratch\n")
    with pytest.raises(UsageError, match="EXPOSE"):
        gateway_port(dockerfile)


@pytest.mark.slow
def test_package_cli_writes_valid_manifests(tmp_path, make_model):
    from shipyard.project import Project
    from shipyard.registry import open_registry

    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "shipyard.yaml").write_text("project: p\n")
    with Project(project_dir) as project:
        open_registry(project).register("credit", make_model(tmp_path / "m1"), actor="dev")
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    out = tmp_path / "bundle"
    command = [shipyard, "package", "credit:1", "-o", str(out), "--no-build", "--k8s"]
    result = subprocess.run(
        [*command, "--replicas", "3", "--image", "example/credit:1"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    documents = [
        yaml.safe_load((out / "k8s" / name).read_text())
        for name in ("deployment.yaml", "service.yaml", "hpa.yaml")
    ]
    for document in documents:
        validate(document)
    container = documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "example/credit:1"
    assert container["ports"][0]["containerPort"] == gateway_port(out / "Dockerfile")
    assert documents[0]["spec"]["replicas"] == 3
    assert "&id" not in (out / "k8s" / "deployment.yaml").read_text()  # no YAML anchors

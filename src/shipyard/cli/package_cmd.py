"""``shipyard package MODEL:N``: a container build context that serves one version."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("package",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "package",
        help="write a Docker build context serving one model version (and build it)",
        description="Write OUTPUT/ with the model in a one-model registry, pinned "
        "requirements, a Shipyard wheel and a Dockerfile; build the image when a Docker "
        "engine answers.",
    )
    parser.add_argument("ref", metavar="MODEL:N|MODEL@ALIAS")
    parser.add_argument("--output", "-o", metavar="DIR", help="default: build/<model>-<version>")
    parser.add_argument("--no-build", action="store_true", help="write the context only")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.add_argument(
        "--k8s", action="store_true", help="also write k8s/ (Deployment, Service, autoscaler)"
    )
    parser.add_argument("--replicas", type=int, default=2, metavar="N", help="default: 2")
    parser.add_argument("--image", metavar="NAME", help="image in the manifests (default: tag)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shipyard.cli.output import emit_json, info
    from shipyard.packaging import package_version
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    with open_project() as project:
        version = open_registry(project).get(args.ref)
        out = Path(args.output or project.root / "build" / f"{version.model}-{version.version}")
        bundle = package_version(project, version.ref, out, build=not args.no_build)
    manifests = _k8s(args, bundle) if args.k8s else []
    if args.json:
        emit_json(bundle)
        return 0
    info(f"wrote {bundle.path} for {bundle.model}:{bundle.version} ({bundle.format})")
    info(f"  image: {bundle.image}" if bundle.image else f"  {bundle.build_note or 'not built'}")
    info(
        f"  run without Docker: pip install --find-links {out}/wheels -r {out}/requirements.txt"
        f" && shipyard -C {out}/app serve --no-admin"
    )
    if manifests:
        info(f"  Kubernetes: kubectl apply -f {out}/k8s/ ({', '.join(p.name for p in manifests)})")
    return 0


def _k8s(args: argparse.Namespace, bundle: Any) -> list[Any]:
    from shipyard.packaging import image_tag
    from shipyard.packaging.k8s import write_manifests

    image = args.image or bundle.image or image_tag(bundle.model, bundle.version)
    return write_manifests(bundle.path, bundle.model, bundle.version, image, replicas=args.replicas)

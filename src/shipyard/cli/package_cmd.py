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
    if args.json:
        emit_json(bundle)
        return 0
    info(f"wrote {bundle.path} for {bundle.model}:{bundle.version} ({bundle.format})")
    info(f"  image: {bundle.image}" if bundle.image else f"  {bundle.build_note or 'not built'}")
    info(
        f"  run without Docker: pip install --find-links {out}/wheels -r {out}/requirements.txt"
        f" && shipyard -C {out}/app serve --no-admin"
    )
    return 0

"""``shipyard init``: create a project in the current folder."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("init",)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "init",
        help="create shipyard.yaml and .shipyard/ in this folder",
        description="Create shipyard.yaml, the .shipyard/ state folder and a .gitignore "
        "entry. With --example, write a complete example ML project instead.",
    )
    parser.add_argument("path", nargs="?", default=".", help="project folder (default: .)")
    parser.add_argument(
        "--example", metavar="NAME", help="write an example project (available: credit-risk)"
    )
    parser.add_argument(
        "--from-dvc", action="store_true", help="take the stages from this folder's dvc.yaml"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.scaffold import init_project

    result = init_project(args.path, example=args.example, from_dvc=args.from_dvc, force=args.force)
    if args.json:
        emit_json({"root": str(result.root), "created": result.created, "example": args.example})
        return 0
    what = f"example project '{args.example}'" if args.example else "Shipyard project"
    if args.from_dvc:
        what += " from dvc.yaml"
    info(f"Initialised {what} in {result.root.absolute()}")
    for path in result.created:
        info(f"  created {path}")
    info("Next: edit shipyard.yaml, then `shipyard config validate`.")
    return 0

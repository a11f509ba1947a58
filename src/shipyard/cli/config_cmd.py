"""``shipyard config validate``: check a shipyard.yaml and list every problem."""

from __future__ import annotations

import argparse
from typing import Any

NAMES = ("config",)


def register(sub: Any) -> None:
    parser = sub.add_parser("config", help="inspect and validate shipyard.yaml")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    validate = commands.add_parser(
        "validate",
        help="check a config file; exit 2 listing every problem when invalid",
        description="Validate FILE (default: the project's shipyard.yaml). Exits 0 when "
        "valid, 2 with every problem listed when not.",
    )
    validate.add_argument("file", nargs="?", help="path to a shipyard.yaml")
    validate.add_argument("--json", action="store_true", help="print the result as JSON")
    validate.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shipyard.cli.output import emit_json, info
    from shipyard.config import load_config
    from shipyard.errors import ConfigError
    from shipyard.project import CONFIG_FILE, find_root

    path = Path(args.file) if args.file else find_root() / CONFIG_FILE
    try:
        config = load_config(path)
    except ConfigError as exc:
        if not args.json:
            raise
        problems = [{"key": k, "message": m} for k, m in exc.problems] or [
            {"key": "", "message": exc.message}
        ]
        emit_json({"file": str(path), "valid": False, "problems": problems})
        return exc.exit_code
    if args.json:
        emit_json({"file": str(path), "valid": True, "project": config.project})
    else:
        info(f"{path}: valid (project '{config.project}', {len(config.stages)} stages)")
    return 0

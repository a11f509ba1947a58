"""``shipyard users`` and ``shipyard token``: people, roles and API tokens."""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli.arguments import non_negative_int

NAMES = ("users", "token")


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="list users, or add one with a role")
    commands = users.add_subparsers(title="commands", metavar="COMMAND")
    add = commands.add_parser("add", help="add a user (admins only, once users exist)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("viewer", "developer", "approver", "admin"))
    add.set_defaults(handler=run_add)
    users.add_argument("--json", action="store_true", help="print as JSON")
    users.set_defaults(handler=run_list)

    token = sub.add_parser("token", help="create or revoke API tokens")
    tcmds = token.add_subparsers(title="commands", metavar="COMMAND")
    create = tcmds.add_parser("create", help="create a token for USER (shown once)")
    create.add_argument("user")
    create.add_argument("--name", default="default", help="a label for the token")
    create.add_argument(
        "--days", type=non_negative_int, default=90, help="expiry in days (0: never)"
    )
    create.set_defaults(handler=run_token_create)
    revoke = tcmds.add_parser("revoke", help="revoke USER's token NAME")
    revoke.add_argument("user")
    revoke.add_argument("name")
    revoke.set_defaults(handler=run_token_revoke)


def _directory(project: Any) -> Any:
    from shipyard.registry.users import UserDirectory

    return UserDirectory(project.metadata)


def run_add(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.project import open_project

    with open_project() as project:
        user = _directory(project).add(args.name, args.role, actor=project.actor)
    info(f"added {user.name} ({user.role})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info, table
    from shipyard.project import open_project

    with open_project() as project:
        users = _directory(project).list()
    if args.json:
        emit_json(users)
    elif not users:
        info("no users yet: single-user mode, everyone acts as admin")
    else:
        table(
            ["USER", "ROLE", "SINCE"], [[u.name, u.role, f"{u.created_at:%Y-%m-%d}"] for u in users]
        )
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    import sys

    from shipyard.cli.output import info
    from shipyard.project import open_project

    with open_project() as project:
        token = _directory(project).create_token(
            args.user, name=args.name, actor=project.actor, days=args.days or None
        )
    sys.stdout.write(token + "\n")
    info("store it now: only its hash is kept, it cannot be shown again")
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.project import open_project

    with open_project() as project:
        count = _directory(project).revoke(args.user, args.name, actor=project.actor)
    info(f"revoked {count} token(s)")
    return 0

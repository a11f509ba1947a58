"""Registry commands: register, models, approve/reject/request, promote, rollback, card."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shipyard.cli.arguments import expected_version

NAMES = (
    "register",
    "models",
    "approve",
    "reject",
    "request",
    "promote",
    "rollback",
    "archive",
    "card",
)


def register(sub: Any) -> None:
    reg = sub.add_parser(
        "register",
        help="register a model file or folder as the next version of MODEL",
        description="Store the model, check it loads in a safe format, and create version "
        "N+1 with its signature, lineage (the run that made it) and a generated model card.",
    )
    reg.add_argument("model", metavar="MODEL")
    reg.add_argument("path", metavar="PATH")
    reg.add_argument("--run", metavar="RUN", help="the run that made it (default: found by hash)")
    reg.add_argument("--format", dest="fmt", help="model format (default: detected)")
    reg.add_argument(
        "--trust-pickle",
        action="store_true",
        help="accept a pickle/joblib file (it can run code; audited)",
    )
    reg.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    reg.add_argument("--description", "-d")
    reg.add_argument(
        "--card",
        metavar="FILE.md",
        help="model card sections (## Intended use…); default: MODEL_CARD.md if present",
    )
    reg.add_argument("--gates", metavar="REPORT.json", help="gate results from shipyard check")
    reg.add_argument("--json", action="store_true", help="print as JSON")
    reg.set_defaults(handler=run_register)

    models = sub.add_parser("models", help="list models, a model's versions, or one version")
    models.add_argument("ref", nargs="?", metavar="MODEL[:N|@ALIAS]")
    models.add_argument("--json", action="store_true", help="print as JSON")
    models.set_defaults(handler=run_models)

    for name, verb in (("approve", "approve"), ("reject", "reject")):
        cmd = sub.add_parser(name, help=f"{verb} a version for an alias (default production)")
        cmd.add_argument("ref", metavar="MODEL:N")
        cmd.add_argument("--alias", default="production")
        cmd.add_argument("--comment", "-m")
        cmd.set_defaults(handler=run_decide, decision=verb)

    request = sub.add_parser("request", help="ask for approval; show what is still missing")
    request.add_argument("ref", metavar="MODEL:N")
    request.add_argument("--alias", default="production")
    request.add_argument("--json", action="store_true", help="print as JSON")
    request.set_defaults(handler=run_request)

    promote = sub.add_parser("promote", help="point an alias (default production) at a version")
    promote.add_argument("ref", metavar="MODEL:N")
    promote.add_argument("--alias", default="production")
    promote.add_argument(
        "--expect",
        type=expected_version,
        default=False,  # False: not given; None: the alias must be unset
        metavar="N|none",
        help="only if the alias points at N now (compare-and-set)",
    )
    promote.add_argument("--reason")
    promote.set_defaults(handler=run_promote)

    rollback = sub.add_parser("rollback", help="move an alias back to its previous version")
    rollback.add_argument("model", metavar="MODEL")
    rollback.add_argument("--alias", default="production")
    rollback.add_argument("--yes", "-y", action="store_true", help="do not ask")
    rollback.add_argument("--dry-run", action="store_true", help="say what would happen")
    rollback.set_defaults(handler=run_rollback)

    archive = sub.add_parser("archive", help="retire a version so it can never serve")
    archive.add_argument("ref", metavar="MODEL:N")
    archive.add_argument("--yes", "-y", action="store_true", help="do not ask")
    archive.set_defaults(handler=run_archive)

    card = sub.add_parser("card", help="export a version's model card")
    card.add_argument("ref", metavar="MODEL[:N|@ALIAS]")
    card.add_argument("--format", dest="fmt", choices=("md", "html", "json"), default="md")
    card.add_argument("--output", "-o", metavar="FILE")
    card.set_defaults(handler=run_card)


def _tags(items: list[str]) -> dict[str, str]:
    from shipyard.errors import UsageError

    tags = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--tag {item!r} must look like KEY=VALUE")
        key, value = item.split("=", 1)
        tags[key] = value
    return tags


def run_register(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from shipyard.cli.output import emit_json, info
    from shipyard.errors import UsageError
    from shipyard.project import open_project
    from shipyard.registry import open_registry
    from shipyard.registry.cards import parse_card_markdown

    card_file = Path(args.card) if args.card else None
    gates = None
    if args.gates:
        try:
            gates = json.loads(Path(args.gates).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read gate results from {args.gates!r}: {exc}") from None
    with open_project() as project:
        default_card = project.root / "MODEL_CARD.md"
        if card_file is None and default_card.is_file():
            card_file = default_card
        card = parse_card_markdown(card_file) if card_file else {}
        version = open_registry(project).register(
            args.model,
            args.path,
            actor=project.actor,
            run_id=args.run,
            fmt=args.fmt,
            trust_pickle=args.trust_pickle,
            tags=_tags(args.tag),
            description=args.description,
            card=card,
            gates=gates,
        )
    if args.json:
        emit_json(version)
        return 0
    info(
        f"registered {version.ref} ({version.format}, {version.oid[:12]})"
        + (f" from run {version.run_id}" if version.run_id else "")
    )
    if version.trusted_pickle:
        info("  warning: pickle accepted with --trust-pickle; recorded in the audit log")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, table
    from shipyard.project import open_project
    from shipyard.registry import open_registry
    from shipyard.registry.service import parse_ref

    with open_project() as project:
        registry = open_registry(project)
        if args.ref is None:
            rows = registry.models()
            if args.json:
                emit_json(rows)
            else:
                table(
                    ["MODEL", "LATEST", "CREATED"],
                    [[r["name"], r["latest"], f"{r['created_at']:%Y-%m-%d}"] for r in rows],
                )
            return 0
        name, alias, number = parse_ref(args.ref)
        if alias is None and number is None:
            versions = registry.versions(name)
            if args.json:
                emit_json(versions)
            else:
                table(
                    ["VERSION", "FORMAT", "STATUS", "ALIASES", "RUN", "BY", "GATES"],
                    [
                        [
                            v.version,
                            v.format,
                            v.status,
                            ",".join(v.aliases),
                            v.run_id or "",
                            v.created_by,
                            _gates(v.gates),
                        ]
                        for v in versions
                    ],
                )
            return 0
        emit_json(registry.get(args.ref))
    return 0


def _gates(gates: dict[str, Any] | None) -> str:
    if gates is None:
        return "not run"
    return "passed" if gates.get("passed") else "failed"


def run_decide(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.cli.remote import remote_from_env
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    remote = remote_from_env()
    if remote is not None:
        result = remote.decide(args.ref, args.decision, args.alias, args.comment)
        info(f"{args.decision}d {result['ref']} for '{args.alias}' on {remote.url}")
        missing = result["missing"]
        info("  ready to promote" if not missing else "  still missing: " + "; ".join(missing))
        return 0
    with open_project() as project:
        registry = open_registry(project)
        version = registry.decide(
            args.ref,
            actor=project.actor,
            decision=args.decision,
            alias=args.alias,
            comment=args.comment,
        )
        missing = registry.missing(version.ref, args.alias)
    info(f"{project.actor} {args.decision}d {version.ref} for '{args.alias}'")
    info("  ready to promote" if not missing else "  still missing: " + "; ".join(missing))
    return 0


def run_request(args: argparse.Namespace) -> int:
    from shipyard.cli.output import emit_json, info
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    with open_project() as project:
        missing = open_registry(project).request(args.ref, args.alias, actor=project.actor)
    if args.json:
        emit_json({"ref": args.ref, "alias": args.alias, "missing": missing})
    elif missing:
        info(f"{args.ref} cannot become '{args.alias}' yet:")
        for item in missing:
            info(f"  - {item}")
    else:
        info(f"{args.ref} meets every requirement for '{args.alias}'")
    return 1 if missing else 0


def run_promote(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.project import open_project
    from shipyard.registry import open_registry
    from shipyard.registry.service import UNSET

    expected: Any = UNSET
    if args.expect is not False:
        expected = args.expect
    from shipyard.cli.remote import KEEP, remote_from_env

    remote = remote_from_env()
    if remote is not None:
        result = remote.set_alias(
            args.ref, args.alias, KEEP if expected is UNSET else expected, args.reason
        )
        info(f"{result['model']}@{args.alias} -> version {result['version']} on {remote.url}")
        return 0
    with open_project() as project:
        version = open_registry(project).set_alias(
            args.ref, args.alias, actor=project.actor, expected=expected, reason=args.reason
        )
    info(f"{version.model}@{args.alias} -> version {version.version}")
    return 0


def _confirm(question: str, yes: bool) -> bool:
    from shipyard.errors import UsageError

    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError("refusing without confirmation", hint="pass --yes to confirm")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run_rollback(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.cli.remote import remote_from_env
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    remote = remote_from_env()
    if remote is not None:
        if not _confirm(f"Roll {args.model}@{args.alias} back on {remote.url}?", args.yes):
            return 1
        result = remote.rollback(args.model, args.alias)
        info(f"{args.model}@{args.alias} -> {result['version']} (rolled back on {remote.url})")
        return 0

    with open_project() as project:
        registry = open_registry(project)
        current = registry.get(f"{args.model}@{args.alias}")
        if args.dry_run:
            info(
                f"{args.model}@{args.alias} is at version {current.version}; rollback would "
                "move it to the version before"
            )
            return 0
        if not _confirm(f"Roll {args.model}@{args.alias} back from {current.version}?", args.yes):
            return 1
        if args.alias == "production":  # routing follows: the old version serves everyone
            from shipyard.rollout import api

            result = api.rollback(
                project, args.model, actor=project.actor, reason=f"rollback by {project.actor}"
            )
            info(
                f"{args.model}@production: {current.version} -> {result['version']} "
                "(rolled back; it takes all traffic)"
            )
            return 0
        version = registry.rollback(args.model, actor=project.actor, alias=args.alias)
    info(f"{args.model}@{args.alias}: {current.version} -> {version.version} (rolled back)")
    return 0


def run_archive(args: argparse.Namespace) -> int:
    from shipyard.cli.output import info
    from shipyard.project import open_project
    from shipyard.registry import open_registry

    if not _confirm(f"Archive {args.ref}? It can never serve again.", args.yes):
        return 1
    with open_project() as project:
        version = open_registry(project).archive(args.ref, actor=project.actor)
    info(f"archived {version.ref}")
    return 0


def run_card(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from shipyard.cli.output import info
    from shipyard.project import open_project
    from shipyard.registry import open_registry
    from shipyard.registry.cards import card_html, card_markdown

    with open_project() as project:
        card = open_registry(project).get(args.ref).card
    text = {"md": card_markdown, "html": card_html}.get(
        args.fmt, lambda c: json.dumps(c, indent=2)
    )(card)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        info(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0

"""The model registry: immutable versions, aliases that move atomically, approvals.

Every change is one transaction that also appends its audit entry, so a change and its
record commit together or not at all. Version numbers come from ``max + 1`` under a
unique constraint, so concurrent registrations get distinct, gap-free numbers; alias
moves are compare-and-set, so of two concurrent moves exactly one wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shipyard.core.policy import AliasRule, ApprovalFact, VersionFacts, missing_requirements
from shipyard.errors import Conflict, NotFound, PolicyViolation, RegistryError, UsageError
from shipyard.formats import load_model
from shipyard.registry.cards import build_card
from shipyard.registry.users import UserDirectory
from shipyard.store import schema
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.metadata import MetadataStore, as_utc

__all__ = ["UNSET", "Registry", "Version", "parse_ref"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
UNSET: Any = object()  # "expected alias value not given": move whatever it points at


@dataclass(frozen=True)
class Version:
    model: str
    version: int
    oid: str
    format: str
    signature: dict[str, Any]
    run_id: str | None
    lineage: dict[str, Any]
    gates: dict[str, Any] | None
    card: dict[str, Any]
    tags: dict[str, str]
    description: str | None
    trusted_pickle: bool
    status: str
    created_at: datetime
    created_by: str
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


def parse_ref(ref: str) -> tuple[str, str | None, int | None]:
    """``model``, ``model:3`` or ``model@production`` -> (model, alias, version)."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, alias, None
    if ":" in ref:
        name, number = ref.rsplit(":", 1)
        if not number.isdigit():
            raise UsageError(f"version in {ref!r} must be a number, e.g. {name}:3")
        return name, None, int(number)
    return ref, None, None


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(
            f"{kind} name {name!r} must start with a letter or digit and use only letters, "
            "digits, '.', '_' and '-' (at most 100 characters)"
        )
    return name


class Registry:
    """Models and versions in the metadata store; model files in the artifact store."""

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        rules: Mapping[str, AliasRule] | None = None,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.rules = dict(rules or {})
        self.users = UserDirectory(metadata)

    # --- registering -------------------------------------------------------------------
    def register(
        self,
        name: str,
        path: str | Path,
        *,
        actor: str,
        run_id: str | None = None,
        fmt: str | None = None,
        trust_pickle: bool = False,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        card: Mapping[str, Any] | None = None,
        gates: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        number: int | None = None,
    ) -> Version:
        """Store the model and create version N+1; the model must load in its format.

        ``number`` keeps a version number from elsewhere (a bundle, an import); it must
        be above every existing version of the model.
        """
        _check_name("model", name)
        self.users.require(actor, "register")
        path = Path(path)
        if not path.exists():
            raise UsageError(f"model path '{path}' does not exist")
        loaded = load_model(path, fmt, trust_pickle=trust_pickle)
        ref = self.artifacts.put(path)
        lineage = self._lineage(run_id, ref.oid)
        facts = {
            "format": loaded.format,
            "signature": dict(signature or loaded.signature),
            "lineage": lineage,
            "gates": dict(gates) if gates is not None else None,
            "tags": dict(tags or {}),
            "description": description,
            "trusted_pickle": loaded.format == "pickle",
        }
        for _ in range(20):
            try:
                return self._insert_version(
                    name, ref.oid, ref.size, actor, facts, card or {}, number
                )
            except IntegrityError:
                continue  # another registration took this number: take the next one
        raise Conflict(f"could not allocate a version of '{name}': too many concurrent writers")

    def _insert_version(
        self,
        name: str,
        oid: str,
        size: int,
        actor: str,
        facts: dict[str, Any],
        card_fields: Mapping[str, Any],
        wanted: int | None = None,
    ) -> Version:
        m, v = schema.models, schema.model_versions
        with self.metadata.transaction() as tx:
            now = self.metadata.clock()
            model_id = tx.execute(sa.select(m.c.id).where(m.c.name == name)).scalar()
            if model_id is None:
                model_id = tx.execute(
                    m.insert().values(name=name, created_at=now, created_by=actor)
                ).inserted_primary_key[0]
            last = tx.execute(sa.select(sa.func.max(v.c.version)).where(v.c.model_id == model_id))
            number = (last.scalar() or 0) + 1
            if wanted is not None:
                if wanted < number:
                    raise Conflict(f"'{name}' already has versions up to {number - 1}")
                number = wanted
            card = build_card(name, number, actor, now, facts, card_fields)
            tx.execute(
                v.insert().values(
                    model_id=model_id,
                    version=number,
                    oid=oid,
                    run_id=facts["lineage"].get("run_id"),
                    card=card,
                    status="registered",
                    created_at=now,
                    created_by=actor,
                    **{k: facts[k] for k in ("format", "signature", "lineage", "gates", "tags")},
                    description=facts["description"],
                    trusted_pickle=facts["trusted_pickle"],
                )
            )
            self.metadata.record_artifact(oid, size, conn=tx)
            details = {"oid": oid, "format": facts["format"], "run": facts["lineage"].get("run_id")}
            self.metadata.append_event(
                actor, "model.register", f"{name}:{number}", details, conn=tx
            )
            if facts["trusted_pickle"]:
                self.metadata.append_event(
                    actor,
                    "model.trust_override",
                    f"{name}:{number}",
                    {"oid": oid, "why": "pickle loaded with --trust-pickle"},
                    conn=tx,
                )
        return self.get(f"{name}:{number}")

    def _lineage(self, run_id: str | None, oid: str) -> dict[str, Any]:
        """The run that made the model: given, or found by the model's content id."""
        from shipyard.pipeline.history import run_lineage, run_that_wrote

        found = self.metadata.get_run(run_id).id if run_id else run_that_wrote(self.metadata, oid)
        return run_lineage(self.metadata, found) if found else {}

    # --- reading -----------------------------------------------------------------------
    def _version_query(self) -> sa.Select[Any]:
        """Versions with their model's name and their aliases, in one statement (alias
        names cannot hold a comma, so the aggregate splits back exactly)."""
        m, v, a = schema.models, schema.model_versions, schema.aliases
        names = (
            sa.select(sa.func.aggregate_strings(a.c.alias, ","))
            .where(a.c.version_id == v.c.id)
            .correlate_except(a)
            .scalar_subquery()
        )
        return sa.select(v, m.c.name.label("model"), names.label("alias_names")).join(
            m, m.c.id == v.c.model_id
        )

    def _to_version(self, tx: sa.Connection, row: Any) -> Version:
        mapping = row._mapping
        names = sorted(mapping["alias_names"].split(",")) if mapping["alias_names"] else []
        return Version(
            model=mapping["model"],
            version=mapping["version"],
            oid=mapping["oid"],
            format=mapping["format"],
            signature=mapping["signature"],
            run_id=mapping["run_id"],
            lineage=mapping["lineage"],
            gates=mapping["gates"],
            card=mapping["card"],
            tags=mapping["tags"],
            description=mapping["description"],
            trusted_pickle=mapping["trusted_pickle"],
            status=mapping["status"],
            created_at=as_utc(mapping["created_at"]),  # type: ignore[arg-type]
            created_by=mapping["created_by"],
            aliases=tuple(names),
        )

    def get(self, ref: str, conn: sa.Connection | None = None) -> Version:
        """Resolve ``model``, ``model:N`` (a version) or ``model@alias``."""
        name, alias, number = parse_ref(ref)
        m, v, a = schema.models, schema.model_versions, schema.aliases
        query = self._version_query().where(m.c.name == name)
        if alias is not None:
            query = query.join(a, a.c.version_id == v.c.id).where(a.c.alias == alias)
        elif number is not None:
            query = query.where(v.c.version == number)
        else:
            query = query.order_by(v.c.version.desc()).limit(1)
        with self.metadata.joined(conn) if conn else self.metadata.transaction(write=False) as tx:
            row = tx.execute(query).first()
            if row is None:
                raise self._not_found(tx, name, alias, number)
            return self._to_version(tx, row)

    def _not_found(
        self, tx: sa.Connection, name: str, alias: str | None, number: int | None
    ) -> NotFound:
        known = tx.execute(sa.select(schema.models.c.id).where(schema.models.c.name == name))
        if known.first() is None:
            return NotFound(f"no model named '{name}'", hint="`shipyard models` lists them")
        if alias is not None:
            return NotFound(f"model '{name}' has no alias '{alias}'")
        return NotFound(f"model '{name}' has no version {number}")

    def models(self) -> list[dict[str, Any]]:
        m, v = schema.models, schema.model_versions
        query = (
            sa.select(m.c.name, m.c.created_at, sa.func.max(v.c.version).label("latest"))
            .join(v, v.c.model_id == m.c.id, isouter=True)
            .group_by(m.c.id, m.c.name, m.c.created_at)
            .order_by(m.c.name)
        )
        with self.metadata.transaction(write=False) as tx:
            return [dict(r._mapping) for r in tx.execute(query)]

    def versions(self, name: str) -> list[Version]:
        m, v = schema.models, schema.model_versions
        query = self._version_query().where(m.c.name == name).order_by(v.c.version)
        with self.metadata.transaction(write=False) as tx:
            versions = [self._to_version(tx, r) for r in tx.execute(query)]
            if not versions:
                raise self._not_found(tx, name, None, None)
            return versions

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        h, m = schema.alias_history, schema.models
        query = (
            sa.select(h).join(m, m.c.id == h.c.model_id).where(m.c.name == name).order_by(h.c.id)
        )
        if alias:
            query = query.where(h.c.alias == alias)
        with self.metadata.transaction(write=False) as tx:
            return [{**r._mapping, "at": as_utc(r.at)} for r in tx.execute(query)]

    # --- governance --------------------------------------------------------------------
    def rule_for(self, alias: str) -> AliasRule:
        return self.rules.get(alias, AliasRule())

    def _facts(
        self, tx: sa.Connection, version_id: int, version: Version, alias: str
    ) -> VersionFacts:
        p = schema.approvals
        rows = tx.execute(
            sa.select(p.c.actor, p.c.role, p.c.decision)
            .where(p.c.version_id == version_id, p.c.alias == alias)
            .order_by(p.c.id)
        )
        return VersionFacts(
            author=version.created_by,
            archived=version.status == "archived",
            gates_passed=None if version.gates is None else bool(version.gates.get("passed")),
            card=version.card,
            approvals=[ApprovalFact(r.actor, r.role, r.decision) for r in rows],
        )

    def _version_id(self, tx: sa.Connection, version: Version) -> int:
        m, v = schema.models, schema.model_versions
        return int(
            tx.execute(
                sa.select(v.c.id)
                .join(m, m.c.id == v.c.model_id)
                .where(m.c.name == version.model, v.c.version == version.version)
            ).scalar_one()
        )

    def missing(self, ref: str, alias: str) -> list[str]:
        """What stops ``ref`` from taking ``alias`` now (empty: nothing)."""
        with self.metadata.transaction(write=False) as tx:
            version = self.get(ref, tx)
            facts = self._facts(tx, self._version_id(tx, version), version, alias)
        return missing_requirements(self.rule_for(alias), facts)

    def request(self, ref: str, alias: str, *, actor: str) -> list[str]:
        """Ask for approval: records the request and returns what is still missing."""
        missing = self.missing(ref, alias)
        version = self.get(ref)
        self.metadata.append_event(
            actor, "approval.request", version.ref, {"alias": alias, "missing": missing}
        )
        return missing

    def decide(
        self,
        ref: str,
        *,
        actor: str,
        decision: str,
        alias: str = "production",
        comment: str | None = None,
    ) -> Version:
        """Approve or reject a version for an alias. Nobody decides on their own work."""
        if decision not in ("approve", "reject"):
            raise UsageError(f"decision must be approve or reject, not {decision!r}")
        with self.metadata.transaction() as tx:
            role = self.users.require(actor, "approve", tx)
            version = self.get(ref, tx)
            if version.created_by == actor:
                raise PolicyViolation(
                    f"'{actor}' registered {version.ref} and cannot {decision} it",
                    hint="another approver must review it (four-eyes)",
                )
            tx.execute(
                schema.approvals.insert().values(
                    version_id=self._version_id(tx, version),
                    alias=alias,
                    actor=actor,
                    role=role,
                    decision=decision,
                    comment=comment,
                    at=self.metadata.clock(),
                )
            )
            self.metadata.append_event(
                actor,
                f"approval.{decision}",
                version.ref,
                {"alias": alias, "comment": comment},
                conn=tx,
            )
        return version

    # --- aliases -----------------------------------------------------------------------
    def set_alias(
        self,
        ref: str,
        alias: str,
        *,
        actor: str,
        expected: Any = UNSET,
        reason: str | None = None,
        action: str = "set",
        enforce: bool = True,
    ) -> Version:
        """Point ``alias`` at a version, if policy allows, as one compare-and-set.

        ``expected`` is the version number the alias must point at now (None: must be
        unset); left out, the alias is moved from whatever it points at, and a
        concurrent move still makes this one fail with Conflict rather than be lost.
        """
        _check_name("alias", alias)
        with self.metadata.transaction() as tx:
            self.users.require(actor, "alias", tx)
            version = self.get(ref, tx)
            version_id = self._version_id(tx, version)
            if enforce:
                missing = missing_requirements(
                    self.rule_for(alias), self._facts(tx, version_id, version, alias)
                )
                if missing:
                    raise PolicyViolation(
                        f"{version.ref} may not become '{alias}': " + "; ".join(missing),
                        hint=f"see `shipyard request {version.ref} --alias {alias}`",
                    )
            elif version.status == "archived":
                raise PolicyViolation(f"{version.ref} is archived and cannot serve")
            current = self._alias_target(tx, version.model, alias)
            if expected is not UNSET and expected != current:
                raise Conflict(
                    f"'{version.model}@{alias}' points at {current}, not {expected}",
                    hint="someone moved it first; look again and retry",
                )
            self._write_alias(tx, version, version_id, alias, current, actor)
            self._history(tx, version, alias, current, action, reason, actor)
        return self.get(f"{version.model}:{version.version}")

    def _alias_target(self, tx: sa.Connection, model: str, alias: str) -> int | None:
        a, m, v = schema.aliases, schema.models, schema.model_versions
        return tx.execute(
            sa.select(v.c.version)
            .join(a, a.c.version_id == v.c.id)
            .join(m, m.c.id == a.c.model_id)
            .where(m.c.name == model, a.c.alias == alias)
        ).scalar()

    def _model_id(self, tx: sa.Connection, model: str) -> int:
        return int(
            tx.execute(
                sa.select(schema.models.c.id).where(schema.models.c.name == model)
            ).scalar_one()
        )

    def _write_alias(
        self,
        tx: sa.Connection,
        version: Version,
        version_id: int,
        alias: str,
        current: int | None,
        actor: str,
    ) -> None:
        a, v = schema.aliases, schema.model_versions
        model_id = self._model_id(tx, version.model)
        now = self.metadata.clock()
        if current is None:
            try:  # the primary key (model, alias) lets only one first setter in
                tx.execute(
                    a.insert().values(
                        model_id=model_id,
                        alias=alias,
                        version_id=version_id,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
            except IntegrityError:
                raise Conflict(f"'{version.model}@{alias}' was just set by someone else") from None
            return
        current_id = sa.select(v.c.id).where(v.c.model_id == model_id, v.c.version == current)
        result = tx.execute(
            a.update()
            .where(
                a.c.model_id == model_id,
                a.c.alias == alias,
                a.c.version_id == current_id.scalar_subquery(),
            )
            .values(version_id=version_id, updated_at=now, updated_by=actor)
        )
        if result.rowcount != 1:
            raise Conflict(f"'{version.model}@{alias}' was just moved by someone else")

    def _history(
        self,
        tx: sa.Connection,
        version: Version,
        alias: str,
        current: int | None,
        action: str,
        reason: str | None,
        actor: str,
    ) -> None:
        tx.execute(
            schema.alias_history.insert().values(
                model_id=self._model_id(tx, version.model),
                alias=alias,
                from_version=current,
                to_version=version.version,
                action=action,
                reason=reason,
                at=self.metadata.clock(),
                actor=actor,
            )
        )
        details = {"alias": alias, "from": current, "to": version.version, "reason": reason}
        self.metadata.append_event(actor, f"alias.{action}", version.model, details, conn=tx)

    def rollback(self, model: str, *, actor: str, alias: str = "production") -> Version:
        """Point ``alias`` back at the version it held before the current one.

        History is a stack: each move pushes, each rollback pops, so rolling back twice
        goes two versions back rather than toggling between the last two.
        """
        stack: list[int] = []
        for entry in self.alias_history(model, alias):
            if entry["action"] == "rollback" and stack:
                stack.pop()
            elif entry["action"] == "set":
                stack.append(entry["to_version"])
        if len(stack) < 2:
            where = f"it is at {stack[-1]}" if stack else "it was never set"
            raise RegistryError(
                f"'{model}@{alias}' has no earlier version to roll back to ({where})"
            )
        return self.set_alias(
            f"{model}:{stack[-2]}",
            alias,
            actor=actor,
            expected=stack[-1],
            reason=f"rollback from {stack[-1]}",
            action="rollback",
            enforce=False,  # it held the alias before, under the rules then in force
        )

    def archive(self, ref: str, *, actor: str) -> Version:
        with self.metadata.transaction() as tx:
            self.users.require(actor, "archive", tx)
            version = self.get(ref, tx)
            if version.aliases:
                raise PolicyViolation(
                    f"{version.ref} still holds alias(es) {', '.join(version.aliases)}",
                    hint="move them to another version first",
                )
            tx.execute(
                schema.model_versions.update()
                .where(schema.model_versions.c.id == self._version_id(tx, version))
                .values(status="archived")
            )
            self.metadata.append_event(actor, "model.archive", version.ref, {}, conn=tx)
        return replace(version, status="archived")

"""Users, roles and API tokens.

A fresh project has no users and runs in single-user mode: whoever runs the CLI acts
as an admin. Once the first user exists, roles are enforced and anyone not listed is a
viewer. Tokens are random, shown once, and stored only as a hash.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from shipyard.core.policy import ROLES, role_allows
from shipyard.errors import Conflict, NotFound, PolicyViolation, UsageError
from shipyard.store import schema
from shipyard.store.hashing import hash_bytes
from shipyard.store.metadata import MetadataStore, as_utc

__all__ = ["TOKEN_PREFIX", "User", "UserDirectory"]

TOKEN_PREFIX = "shp_"


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: datetime | None = None


class UserDirectory:
    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def _count(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.users)).scalar())

    def role_of(self, name: str, conn: sa.Connection | None = None) -> str:
        """The user's role; single-user mode (no users yet) makes everyone an admin."""
        with self.metadata.joined(conn) as tx:
            if self._count(tx) == 0:
                return "admin"
            role = tx.execute(
                sa.select(schema.users.c.role).where(schema.users.c.name == name)
            ).scalar()
        return str(role) if role else "viewer"

    def require(self, actor: str, action: str, conn: sa.Connection | None = None) -> str:
        """Return the actor's role, or raise PolicyViolation if it may not ``action``."""
        role = self.role_of(actor, conn)
        if not role_allows(role, action):
            raise PolicyViolation(
                f"user '{actor}' has role '{role}', which may not {action}",
                hint="ask an admin: shipyard users add NAME --role ROLE",
            )
        return role

    def add(self, name: str, role: str, *, actor: str) -> User:
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}", hint=f"roles: {', '.join(ROLES)}")
        if not name or len(name) > 200:
            raise UsageError("a user name must be 1 to 200 characters")
        with self.metadata.transaction() as tx:
            if self._count(tx) > 0:
                self.require(actor, "admin", tx)
            elif role != "admin":
                raise UsageError(
                    "the first user must be an admin (until then everyone acts as one)",
                    hint=f"shipyard users add {actor} --role admin",
                )
            exists = tx.execute(
                sa.select(schema.users.c.id).where(schema.users.c.name == name)
            ).first()
            if exists:
                raise Conflict(f"user '{name}' already exists")
            now = self.metadata.clock()
            tx.execute(
                schema.users.insert().values(name=name, role=role, created_at=now, created_by=actor)
            )
            self.metadata.append_event(actor, "user.add", name, {"role": role}, conn=tx)
        return User(name, role, now)

    def list(self) -> list[User]:
        u = schema.users
        with self.metadata.transaction(write=False) as tx:
            rows = tx.execute(sa.select(u.c.name, u.c.role, u.c.created_at).order_by(u.c.name))
            return [User(r.name, r.role, as_utc(r.created_at)) for r in rows]

    def create_token(self, user: str, *, name: str, actor: str, days: int | None = 90) -> str:
        """A new token for ``user``; only its hash is stored, so show it now or never."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.metadata.transaction() as tx:
            if actor != user:
                self.require(actor, "admin", tx)
            user_id = tx.execute(
                sa.select(schema.users.c.id).where(schema.users.c.name == user)
            ).scalar()
            if user_id is None:
                raise NotFound(f"no user '{user}'", hint="shipyard users add NAME --role ROLE")
            now = self.metadata.clock()
            tx.execute(
                schema.tokens.insert().values(
                    user_id=user_id,
                    name=name,
                    token_hash=hash_bytes(token.encode()),
                    created_at=now,
                    expires_at=now + timedelta(days=days) if days else None,
                )
            )
            self.metadata.append_event(actor, "token.create", user, {"name": name}, conn=tx)
        return token

    def authenticate(self, token: str) -> User | None:
        """The user a valid, unexpired, unrevoked token belongs to, else None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        t, u = schema.tokens, schema.users
        query = (
            sa.select(u.c.name, u.c.role, t.c.expires_at, t.c.revoked_at)
            .join(u, u.c.id == t.c.user_id)
            .where(t.c.token_hash == hash_bytes(token.encode()))
        )
        with self.metadata.transaction(write=False) as tx:
            row = tx.execute(query).first()
        if row is None or row.revoked_at is not None:
            return None
        expires = as_utc(row.expires_at)
        if expires is not None and expires <= self.metadata.clock():
            return None
        return User(row.name, row.role)

    def revoke(self, user: str, name: str, *, actor: str) -> int:
        t, u = schema.tokens, schema.users
        with self.metadata.transaction() as tx:
            if actor != user:
                self.require(actor, "admin", tx)
            ids = sa.select(u.c.id).where(u.c.name == user).scalar_subquery()
            result = tx.execute(
                t.update()
                .where(t.c.user_id == ids, t.c.name == name, t.c.revoked_at.is_(None))
                .values(revoked_at=self.metadata.clock())
            )
            self.metadata.append_event(actor, "token.revoke", user, {"name": name}, conn=tx)
        return int(result.rowcount)

"""The control plane in the metadata store: routing tables and feature flags.

Every change is a compare-and-set on the row's revision plus an audit entry, in one
transaction. Gateways poll ``change_token()`` and reload when it moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shipyard.core.flags import Flag, flag_from_json
from shipyard.core.routing import RoutingTable, table_from_json
from shipyard.errors import Conflict, NotFound, UsageError
from shipyard.store import schema
from shipyard.store.metadata import MetadataStore

__all__ = ["ControlPlane", "Snapshot"]


@dataclass(frozen=True)
class Snapshot:
    revision: int
    tables: dict[str, RoutingTable]
    flags: dict[str, Flag]


class ControlPlane:
    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def change_token(self) -> int:
        """A number that grows with every change (a cheap poll for replicas).

        The sum of all revisions: every write gives its row a revision above the
        highest, so the sum rises strictly even when two writers pick the same number.
        """
        with self.metadata.transaction(write=False) as tx:
            return sum(
                int(tx.execute(sa.select(sa.func.sum(t.c.revision))).scalar() or 0)
                for t in (schema.routing_tables, schema.flags)
            )

    @staticmethod
    def _highest(tx: sa.Connection) -> int:
        return max(
            int(tx.execute(sa.select(sa.func.max(t.c.revision))).scalar() or 0)
            for t in (schema.routing_tables, schema.flags)
        )

    def snapshot(self) -> Snapshot:
        """Everything a gateway needs. The token is read first: a change that lands
        while the tables are read makes the next poll see a newer token, never a miss."""
        token = self.change_token()
        with self.metadata.transaction(write=False) as tx:
            tables = {
                row.model: table_from_json(row.spec)
                for row in tx.execute(sa.select(schema.routing_tables))
            }
            flags = {
                row.name: flag_from_json(row.spec) for row in tx.execute(sa.select(schema.flags))
            }
        return Snapshot(token, tables, flags)

    def _put(
        self,
        table: sa.Table,
        key_column: str,
        key: str,
        spec: dict[str, Any],
        actor: str,
        expected: int | None,
        action: str,
        conn: sa.Connection | None = None,
    ) -> int:
        key_col = table.c[key_column]
        with self.metadata.joined(conn) as tx:
            current = tx.execute(sa.select(table.c.revision).where(key_col == key)).scalar()
            if expected is not None and current != expected:
                raise Conflict(
                    f"{action.split('.')[0]} '{key}' is at revision {current}, not {expected}",
                    hint="someone changed it first; read it again and retry",
                )
            revision = self._highest(tx) + 1
            values = {
                "spec": spec,
                "revision": revision,
                "updated_at": self.metadata.clock(),
                "updated_by": actor,
            }
            if current is None:
                tx.execute(table.insert().values({key_column: key, **values}))
            else:
                result = tx.execute(
                    table.update().where(key_col == key, table.c.revision == current).values(values)
                )
                if result.rowcount != 1:
                    raise Conflict(f"'{key}' was changed concurrently; retry")
            self.metadata.append_event(actor, action, key, {"revision": revision, **spec}, conn=tx)
        return revision

    def set_table(
        self,
        table: RoutingTable,
        *,
        actor: str,
        expected: int | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Store a table (compare-and-set on ``expected``); ``conn`` joins a caller's
        transaction so a rollout's state and its routing change commit together."""
        try:
            table.validate()
        except ValueError as exc:
            raise UsageError(f"invalid routing table for '{table.model}': {exc}") from None
        return self._put(
            schema.routing_tables,
            "model",
            table.model,
            table.to_json(),
            actor,
            expected,
            "routing.set",
            conn,
        )

    def get_table(self, model: str) -> tuple[RoutingTable, int]:
        t = schema.routing_tables
        with self.metadata.transaction(write=False) as tx:
            row = tx.execute(sa.select(t).where(t.c.model == model)).first()
        if row is None:
            raise NotFound(f"no routing table for model '{model}'")
        return table_from_json(row.spec), int(row.revision)

    def set_flag(self, flag: Flag, *, actor: str, expected: int | None = None) -> int:
        try:
            flag_from_json(flag.to_json())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return self._put(
            schema.flags, "name", flag.name, flag.to_json(), actor, expected, "flag.set"
        )

    def get_flag(self, name: str) -> tuple[Flag, int]:
        f = schema.flags
        with self.metadata.transaction(write=False) as tx:
            row = tx.execute(sa.select(f).where(f.c.name == name)).first()
        if row is None:
            raise NotFound(f"no flag named '{name}'")
        return flag_from_json(row.spec), int(row.revision)

"""Which tables a migration run touches: those of the contexts its database holds, and the
platform's (ADR 0018, "Migrations per context").

A table belongs to the context its name starts with (``lodging_nights`` to lodging); any other
table (outbox, inbox, idempotency keys, dead letters) is the platform's and lives in every
database, since each context writes its own events and keys next to its own rows. The contexts a
database holds are recorded in it, in ``haot_schema_contexts``, by ``haot.platform.migrate``.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op
from sqlalchemy import Column, MetaData, String, Table, delete, insert, inspect, select
from sqlalchemy.engine import Connection

from haot.platform.settings import CONTEXTS

# Kept out of ``haot.models.metadata``: it describes the database, not any context's model.
SCOPE_TABLE = Table(
    "haot_schema_contexts",
    MetaData(),
    Column("context", String(40), primary_key=True),
)


def owner_of(table: str) -> str | None:
    """The context a table belongs to, or None for a platform table."""
    prefix = table.split("_", 1)[0]
    return prefix if prefix in CONTEXTS else None


def running_scope() -> frozenset[str]:
    """The contexts of the running migration: the ``contexts`` attribute of its Alembic config,
    or every context when none is given (plain ``alembic`` on an all-in-one database)."""
    config = op.get_context().config
    contexts = config.attributes.get("contexts") if config is not None else None
    return frozenset(CONTEXTS) if contexts is None else frozenset(contexts)


def migrates(table: str) -> bool:
    """Whether the running migration creates, alters or drops ``table``."""
    owner = owner_of(table)
    return owner is None or owner in running_scope()


def recorded_scope(connection: Connection) -> frozenset[str] | None:
    """The contexts recorded in this database, or None when it records none (a new database, or
    one migrated before scopes were recorded)."""
    if not inspect(connection).has_table(SCOPE_TABLE.name):
        return None
    return frozenset(connection.execute(select(SCOPE_TABLE.c.context)).scalars())


def record_scope(connection: Connection, contexts: Iterable[str]) -> None:
    SCOPE_TABLE.create(connection, checkfirst=True)
    connection.execute(delete(SCOPE_TABLE))
    rows = [{"context": context} for context in sorted(contexts)]
    if rows:
        connection.execute(insert(SCOPE_TABLE), rows)

"""The migration history and the models agree, on both engines: a model change without its
migration fails here instead of in production."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from haot.models import metadata
from haot.platform.db import create_engine
from haot.platform.settings import CONTEXTS


def test_every_context_registers_its_tables() -> None:
    prefixes = {name.split("_", 1)[0] for name in metadata.tables}
    assert set(CONTEXTS) <= prefixes
    assert {"outbox", "inbox", "idempotency_keys"} <= set(metadata.tables)


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)

    def diff(connection: Any) -> list[Any]:
        # Other tests create scratch tables of their own in the shared database: look at ours.
        def ours(name: str | None, type_: str, parent: Any) -> bool:
            return type_ != "table" or name in metadata.tables

        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_name": ours}
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []


async def test_the_all_in_one_database_holds_every_context(database_url: str) -> None:
    """``haot migrate`` with no ``--context`` records every context in the one database, so a
    later ``--context`` run keeps them all current (ADR 0018, "Migrations per context")."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT context FROM haot_schema_contexts"))
            recorded = {row[0] for row in rows}
    finally:
        await engine.dispose()
    assert recorded == set(CONTEXTS)

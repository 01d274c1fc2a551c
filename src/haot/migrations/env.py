"""Alembic environment: one migration history, in which every operation runs only where the
table it touches belongs (``haot.migrations.scope``, ADR 0018 "Migrations per context").

``haot.platform.migrate`` passes the contexts a database holds as the ``contexts`` attribute and
its own connection as ``connection``, so the upgrade and the record of what the database holds
commit together. Plain ``alembic`` (no attributes) migrates the contexts the database records,
or every context in a database that records none (an all-in-one database).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from haot.migrations.scope import SCOPE_TABLE, recorded_scope
from haot.models import metadata
from haot.platform.db import create_engine, is_sqlite

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migration")
    return str(url)


def _ours(name: str | None, type_: str, parent_names: object) -> bool:
    # The scope table is no model's: autogenerate must not propose dropping it.
    return not (type_ == "table" and name == SCOPE_TABLE.name)


def _run(connection: Connection) -> None:
    if "contexts" not in config.attributes:
        # Without this, plain ``alembic downgrade`` on a one-context database would try to drop
        # the tables of every other context, which it never had.
        config.attributes["contexts"] = recorded_scope(connection)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=is_sqlite(_url()),
        compare_type=True,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif isinstance(given := config.attributes.get("connection"), Connection):
    _run(given)
else:
    asyncio.run(_run_async())

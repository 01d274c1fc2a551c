"""Run Alembic migrations against every database the requested contexts use; each database
receives the tables of the contexts it holds and the platform's, no others (ADR 0018,
"Migrations per context")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib import resources
from typing import Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import make_url
from sqlalchemy.engine import Connection

from haot.migrations.scope import record_scope, recorded_scope
from haot.platform.db import Databases, create_engine
from haot.platform.errors import Conflict
from haot.platform.settings import CONTEXTS, Settings

P = ParamSpec("P")
T = TypeVar("T")

EVERY_CONTEXT = frozenset(CONTEXTS)


class MigrationRefused(Conflict):
    """A database asked to hold a context whose tables it was migrated without."""

    code = "migration_refused"
    title = "Migration refused"


def alembic_config(url: str) -> Config:
    ini = resources.files("haot.migrations") / "alembic.ini"
    config = Config(str(ini))
    config.set_main_option("script_location", str(resources.files("haot.migrations")))
    config.set_main_option(
        "version_locations", str(resources.files("haot.migrations") / "versions")
    )
    config.attributes["url"] = url
    return config


def ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        from pathlib import Path

        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def requested_scopes(settings: Settings, contexts: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """Each database to migrate and the requested contexts that live in it; the shared database
    is always among them, for the platform tables, even when no requested context lives there."""
    unknown = set(contexts) - EVERY_CONTEXT
    if unknown:
        raise ValueError(f"unknown contexts {sorted(unknown)}; choose from {', '.join(CONTEXTS)}")
    databases = Databases(settings)
    urls = sorted({*databases.distinct_urls(contexts), settings.database_url})
    return {url: frozenset(c for c in contexts if databases.url_for(c) == url) for url in urls}


def held_scope(connection: Connection) -> frozenset[str] | None:
    """The contexts whose tables this database holds, or None for a database at no revision
    (new, or downgraded to the base), which holds none and may take any."""
    if not MigrationContext.configure(connection).get_current_heads():
        return None
    recorded = recorded_scope(connection)
    # Migrated before scopes were recorded: the all-in-one database, every context's tables.
    return EVERY_CONTEXT if recorded is None else recorded


def scope_to_migrate(connection: Connection, url: str, requested: frozenset[str]) -> frozenset[str]:
    """What this database is migrated for: every context it holds (an upgrade keeps them all
    current), or the requested ones in a database that holds none yet."""
    held = held_scope(connection)
    if held is None:
        return requested
    if requested <= held:
        return held
    raise MigrationRefused(refusal(url, held, requested))


def refusal(url: str, held: frozenset[str], requested: frozenset[str]) -> str:
    missing = sorted(requested - held)
    variables = ", ".join(f"HAOT_{context.upper()}_DATABASE_URL" for context in missing)
    holds = ", ".join(sorted(held)) or "no context (platform tables only)"
    return (
        f"database {make_url(url).render_as_string(hide_password=True)} holds {holds}, "
        f"not {', '.join(missing)}: a database migrated without a context's tables cannot take "
        f"them later; give {'it' if len(missing) == 1 else 'each'} a database of its own "
        f"({variables}) and migrate again"
    )


def _upgrade(connection: Connection, url: str, requested: frozenset[str], revision: str) -> None:
    scope = scope_to_migrate(connection, url, requested)
    config = alembic_config(url)
    # One connection, one transaction: the tables and the record of whom they serve commit (or
    # roll back, on PostgreSQL and SQLite alike) together.
    config.attributes["connection"] = connection
    config.attributes["contexts"] = scope
    command.upgrade(config, revision)
    record_scope(connection, scope)


async def _in_transaction(
    url: str,
    work: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work, *args, **kwargs)
    finally:
        await engine.dispose()


def migrate(
    settings: Settings, *, contexts: tuple[str, ...] = CONTEXTS, revision: str = "head"
) -> None:
    """Upgrade every database ``contexts`` use (and the shared one) to ``revision``. Raises
    ``MigrationRefused``, before changing any database, when one was migrated without a
    requested context's tables."""
    scopes = requested_scopes(settings, contexts)
    for url in scopes:
        ensure_sqlite_dir(url)
    for url, requested in scopes.items():
        asyncio.run(_in_transaction(url, scope_to_migrate, url, requested))
    for url, requested in scopes.items():
        asyncio.run(_in_transaction(url, _upgrade, url, requested, revision))

"""Migrations per context (ADR 0018, issue 15): each database receives the tables of the contexts
it holds and the platform's, records which contexts those are, keeps all of them current on every
upgrade, refuses a context it was migrated without, and an all-in-one database migrated before
scopes were recorded still counts as holding every context. Each test on fresh databases of its
own, on both engines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from haot.lodging.schemas import LodgingCreate, Region
from haot.models import metadata
from haot.platform.auth import Principal, Role
from haot.platform.clock import utcnow
from haot.platform.db import create_engine
from haot.platform.migrate import MigrationRefused, alembic_config, migrate
from haot.platform.settings import CONTEXTS
from tests.conftest import in_thread, make_settings
from tests.support.server import context_alone
from tests.support.services import POSTGRES_ADMIN_URL, unavailable
from tests.test_cli import haot

# The platform's tables: in every database, whatever contexts it holds. A new table that is
# neither a context's (by its prefix) nor listed here fails the first test below.
PLATFORM_TABLES = frozenset({"outbox", "inbox", "idempotency_keys", "event_dead_letters"})
BOOKKEEPING = frozenset({"alembic_version", "haot_schema_contexts"})


def tables_of(*contexts: str) -> set[str]:
    return {t for t in metadata.tables if t.split("_", 1)[0] in contexts} | PLATFORM_TABLES


# -- scratch databases -------------------------------------------------------------------------


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def scratch(backend: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Makes empty databases on the backend under test (dropped afterwards): their URLs, which
    sort by ``tag``."""
    created: list[str] = []

    def make(tag: str = "") -> str:
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / f'{tag}{uuid.uuid4().hex[:8]}.db'}"
        name = f"haot_scope_{tag}{uuid.uuid4().hex[:10]}"
        try:
            in_thread(asyncio.run, _admin(f'CREATE DATABASE "{name}"'))
        except (OSError, asyncpg.PostgresError) as exc:
            unavailable("PostgreSQL", f"{POSTGRES_ADMIN_URL}: {exc}")
        created.append(name)
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"

    yield make
    for name in created:
        in_thread(asyncio.run, _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def on(url: str, work: Callable[[Connection], Any]) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                result = await connection.run_sync(work)
                await connection.commit()
                return result
        finally:
            await engine.dispose()

    return in_thread(asyncio.run, run())


def tables(url: str) -> set[str]:
    return set(on(url, lambda c: inspect(c).get_table_names()))


def recorded_rows(url: str) -> set[str]:
    rows = on(url, lambda c: c.execute(text("SELECT context FROM haot_schema_contexts")).all())
    return {row[0] for row in rows}


def differences_from_the_models(url: str) -> list[Any]:
    """What the database's tables lack or have beyond their models (only the tables it has)."""

    def diff(connection: Connection) -> list[Any]:
        present = set(inspect(connection).get_table_names())

        def ours(item: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
            return type_ != "table" or name in present & set(metadata.tables)

        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_object": ours}
        )
        return list(compare_metadata(context, metadata))

    return list(on(url, diff))


def run_migrate(url: str, *contexts: str, revision: str = "head", **settings: Any) -> None:
    in_thread(lambda: migrate(make_settings(url, **settings), contexts=contexts, revision=revision))


def old_way(url: str, revision: str = "head") -> None:
    """How databases were migrated before scopes: the whole history, nothing recorded."""
    in_thread(command.upgrade, alembic_config(url), revision)


# -- tests ---------------------------------------------------------------------------------------


def test_every_table_is_a_contexts_or_the_platforms() -> None:
    for table in metadata.tables:
        owner = table.split("_", 1)[0]
        assert owner in CONTEXTS or table in PLATFORM_TABLES, table


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_context_alone_gets_its_tables_and_the_platforms(
    scratch: Callable[..., str], context: str
) -> None:
    url = scratch()
    run_migrate(url, context)
    assert tables(url) == tables_of(context) | BOOKKEEPING
    assert recorded_rows(url) == {context}
    # Columns and indexes too: a later migration's change to this context's tables (lodging's
    # rating_version, added with the reviews) must not be skipped.
    assert differences_from_the_models(url) == []


async def test_the_lodging_context_served_alone_on_its_own_database(
    scratch: Callable[..., str], redis_available: str
) -> None:
    url = scratch()
    await asyncio.to_thread(run_migrate, url, "lodging")
    assert tables(url) - BOOKKEEPING == tables_of("lodging")
    settings = make_settings(url)
    async with context_alone(settings, "lodging") as (base, platform):
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        lodging = await platform.services["lodging"].create(
            host,
            LodgingCreate(
                name="Harbor Stay",
                address="1 Harbor-ro",
                region=Region(city="Busan", district="Haeundae"),
                latitude=35.16,
                longitude=129.16,
                max_guests=4,
            ),
        )
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.get(f"/api/v1/lodgings/{lodging.id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "Harbor Stay"


def test_an_upgrade_keeps_every_context_the_database_holds_current(
    scratch: Callable[..., str],
) -> None:
    """Asked for one of the contexts it holds, a database is migrated for all of them: the
    reviews' migration also adds a column to lodging's table, which must not be left behind."""
    url = scratch()
    run_migrate(url, "lodging", "review", revision="0009")
    run_migrate(url, "review")
    assert tables(url) == tables_of("lodging", "review") | BOOKKEEPING
    assert recorded_rows(url) == {"lodging", "review"}
    assert differences_from_the_models(url) == []


def test_a_database_migrated_before_scopes_holds_every_context(
    scratch: Callable[..., str],
) -> None:
    url = scratch()
    old_way(url, "0009")
    assert "haot_schema_contexts" not in tables(url)
    amenities = metadata.tables["lodging_amenities"]
    on(
        url,
        lambda c: c.execute(amenities.insert(), {"lodging_id": uuid.uuid4(), "amenity": "wifi"}),
    )
    run_migrate(url, "review")
    assert tables(url) == set(metadata.tables) | BOOKKEEPING
    assert recorded_rows(url) == set(CONTEXTS)
    assert differences_from_the_models(url) == []
    assert on(url, lambda c: c.execute(text("SELECT amenity FROM lodging_amenities")).all()) == [
        ("wifi",)
    ]


def test_a_context_the_database_does_not_hold_is_refused_and_nothing_changes(
    scratch: Callable[..., str], backend: str
) -> None:
    # The new database comes first, so a migration that refused only on reaching the other one
    # would already have changed it.
    review_url, lodging_url = scratch("a"), scratch("b")
    if backend == "postgres":  # trust authentication: the password is only there to be hidden
        review_url, lodging_url = (
            u.replace("://postgres@", "://postgres:s3cret-pw@") for u in (review_url, lodging_url)
        )
    run_migrate(lodging_url, "lodging")
    before = tables(lodging_url)

    with pytest.raises(MigrationRefused) as refused:
        # The review database is new and would take the reviews, but the shared one was migrated
        # without identity's tables: neither is touched.
        run_migrate(lodging_url, "identity", "review", review_database_url=review_url)

    message = refused.value.detail
    assert "\n" not in message
    assert "holds lodging" in message
    assert "not identity" in message
    assert "HAOT_IDENTITY_DATABASE_URL" in message
    assert "s3cret-pw" not in message
    assert lodging_url.rsplit("/", 1)[1] in message  # names the database
    assert tables(lodging_url) == before
    assert recorded_rows(lodging_url) == {"lodging"}
    assert tables(review_url) == set()


@pytest.mark.parametrize("scope", ["recorded", "given"])
def test_downgrade_to_base_drops_only_what_it_created(
    scratch: Callable[..., str], scope: str
) -> None:
    url = scratch()
    run_migrate(url, "lodging")
    config = alembic_config(url)
    if scope == "given":
        config.attributes["contexts"] = frozenset({"lodging"})
    # "recorded": plain alembic, which reads what the database records
    in_thread(command.downgrade, config, "base")
    assert tables(url) == BOOKKEEPING

    # At no revision the database holds nothing, so it may take any context again.
    run_migrate(url, "review")
    assert tables(url) == tables_of("review") | BOOKKEEPING
    assert recorded_rows(url) == {"review"}


def test_haot_migrate_context_on_a_database_of_its_own(
    scratch: Callable[..., str], tmp_path: Path
) -> None:
    url, review_url = scratch(), scratch()
    env = {"HAOT_DATABASE_URL": url}
    where = tmp_path / "cwd"
    where.mkdir()

    first = haot("migrate", "--context", "lodging", database=where / "unused.db", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "migrated"
    again = haot("migrate", "--context", "lodging", database=where / "unused.db", **env)
    assert again.returncode == 0, again.stderr
    assert tables(url) == tables_of("lodging") | BOOKKEEPING
    assert recorded_rows(url) == {"lodging"}

    refused = haot("migrate", "--context", "review", database=where / "unused.db", **env)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("haot: database ")
    assert "HAOT_REVIEW_DATABASE_URL" in lines[0]
    assert tables(url) == tables_of("lodging") | BOOKKEEPING

    # As the message says: the review context on a database of its own.
    own = haot(
        "migrate",
        "--context",
        "review",
        database=where / "unused.db",
        HAOT_REVIEW_DATABASE_URL=review_url,
        **env,
    )
    assert own.returncode == 0, own.stderr
    assert tables(review_url) == tables_of("review") | BOOKKEEPING
    assert recorded_rows(url) == {"lodging"}

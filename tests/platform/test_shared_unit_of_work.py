"""A shared unit of work: units of other contexts on the same database join its transaction
(their commit only flushes), so everything commits or rolls back together; units on another
database, and tasks started from inside it, never join."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.events import Event
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from haot.platform.uow import JoinedUnitFailed, UnitOfWorkFactory
from tests.support.effects import sessions_with

metadata = MetaData()
rows = Table(
    "test_shared_uow_rows",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("context", String(20)),
    Column("n", Integer),
)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_with(settings, rows) as made:
        yield made


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(rows))).scalar_one())


async def outbox_types(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxMessage.type))).all())


async def write(factory: UnitOfWorkFactory, context: str, *, fail: bool = False) -> bool:
    """What another context's use case does: its own unit of work, one row, one event."""
    async with factory() as uow:
        await uow.session.execute(insert(rows).values(id=uuid.uuid4(), context=context, n=1))
        uow.emit(Event(type=f"{context}.written", aggregate_id=context, payload={}))
        if fail:
            raise RuntimeError(f"{context} failed after writing")
        await uow.commit()
        return uow.joined


async def test_units_on_the_same_database_join_and_commit_together(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    reservation, lodging = UnitOfWorkFactory(sessions), UnitOfWorkFactory(sessions)
    async with reservation(shared=True) as uow:
        assert await write(lodging, "lodging") is True
        if backend == "postgres":  # (SQLite: another reader would wait for this writer)
            assert await count(sessions) == 0  # joined: nothing committed yet
        await uow.session.execute(insert(rows).values(id=uuid.uuid4(), context="res", n=1))
        uow.emit(Event(type="reservation.made", aggregate_id="r", payload={}))
        await uow.commit()
    assert await count(sessions) == 2
    assert sorted(await outbox_types(sessions)) == ["lodging.written", "reservation.made"]


async def test_a_shared_unit_that_does_not_commit_rolls_back_what_joined_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reservation, lodging = UnitOfWorkFactory(sessions), UnitOfWorkFactory(sessions)
    async with reservation(shared=True):
        await write(lodging, "lodging")
    assert await count(sessions) == 0
    assert await outbox_types(sessions) == []


async def test_a_joined_unit_that_failed_poisons_the_shared_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A caller that catches a joined unit's exception can never commit its half-done writes."""
    reservation, lodging = UnitOfWorkFactory(sessions), UnitOfWorkFactory(sessions)
    async with reservation(shared=True) as uow:
        with pytest.raises(RuntimeError):
            await write(lodging, "lodging", fail=True)
        with pytest.raises(JoinedUnitFailed):
            await uow.commit()
    assert await count(sessions) == 0


async def test_after_commit_actions_of_joined_units_wait_for_the_shared_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reservation, lodging = UnitOfWorkFactory(sessions), UnitOfWorkFactory(sessions)
    seen: list[int] = []

    async def observe() -> None:
        seen.append(await count(sessions))

    async with reservation(shared=True) as uow:
        async with lodging() as joined:
            await joined.session.execute(insert(rows).values(id=uuid.uuid4(), context="l", n=1))
            joined.after_commit(observe, wait=True)
            await joined.commit()
        assert seen == []
        await uow.commit()
    assert seen == [1]  # ran once, after the row was committed


async def test_units_on_another_database_never_join(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions_with(settings, rows) as elsewhere:  # same URL, another factory: joins
        assert UnitOfWorkFactory(sessions).shares_database_with(UnitOfWorkFactory(sessions))
        other = UnitOfWorkFactory(async_sessionmaker(elsewhere.kw["bind"]))
        async with UnitOfWorkFactory(sessions)(shared=True):
            assert await write(other, "payment") is False  # committed on its own
        assert await count(sessions) == 1


async def test_tasks_started_inside_a_shared_unit_do_not_join_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reservation, lodging = UnitOfWorkFactory(sessions), UnitOfWorkFactory(sessions)
    async with reservation(shared=True) as uow:
        background = asyncio.create_task(write(lodging, "background"))
        await uow.commit()  # nothing joins once the commit has begun
        assert await background is False
    assert await count(sessions) == 1


async def test_a_plain_unit_of_work_shares_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reservation, lodging = UnitOfWorkFactory(sessions), UnitOfWorkFactory(sessions)
    async with reservation():
        assert await write(lodging, "lodging") is False
    assert await count(sessions) == 1


async def test_a_read_outside_a_unit_runs_without_a_transaction_of_its_own(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    """On PostgreSQL in autocommit: the statement is its own transaction (no BEGIN before it),
    so the transaction began when the statement did."""
    factory = UnitOfWorkFactory(sessions)
    async with factory.read() as connection:
        assert (await connection.execute(select(func.count()).select_from(rows))).scalar() == 0
        if backend == "postgresql":
            own = await connection.execute(select(func.now() == func.statement_timestamp()))
            assert own.scalar() is True
    async with factory() as uow:  # a unit of work, for contrast, began before its statement
        await uow.session.execute(select(1))
        if backend == "postgresql":
            began = await uow.session.execute(select(func.now() == func.statement_timestamp()))
            assert began.scalar() is False


async def test_a_read_inside_a_shared_unit_sees_its_uncommitted_writes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    factory = UnitOfWorkFactory(sessions)
    async with factory(shared=True) as uow:
        await uow.session.execute(insert(rows).values(id=uuid.uuid4(), context="booking", n=1))
        async with factory.read() as connection:
            seen = await connection.execute(select(func.count()).select_from(rows))
            assert seen.scalar() == 1
        await uow.rollback()
    assert await count(sessions) == 0

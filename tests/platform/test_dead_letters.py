"""Poison events in the inbox consumer, on both database backends: an event whose payload does not
decode into its contract is parked as a dead letter (with its inbox row, counted, logged), the
events around it still apply, a redelivery does not apply it either, and once the cause is fixed
it can be applied again exactly once (issue 11, item 14)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Uuid, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.events import Event
from haot.platform.inbox import Consumer, DeadLetter, InboxEntry
from haot.platform.metrics import EVENTS_POISON
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from tests.support.contracts import Thing, envelope
from tests.support.effects import sessions_with

metadata = MetaData()
effects = Table(
    "test_dead_letter_effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("seq", Integer, nullable=False),
)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_with(settings, effects) as made:
        yield made


async def record(uow: UnitOfWork, event: Thing) -> None:
    await uow.session.execute(insert(effects).values(event_id=event.token, seq=event.seq))


def consumer(sessions: async_sessionmaker[AsyncSession]) -> Consumer:
    return Consumer(f"test.dead.{uuid.uuid4().hex[:8]}", UnitOfWorkFactory(sessions)).on(
        Thing, record
    )


def poisoned(event: Event, **payload: object) -> Event:
    return Event(
        type=event.type,
        aggregate_id=event.aggregate_id,
        payload={**event.payload, **payload},
        id=event.id,
        occurred_at=event.occurred_at,
    )


async def applied(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[uuid.UUID, int]]:
    async with sessions() as session:
        rows = await session.execute(select(effects.c.event_id, effects.c.seq).order_by("id"))
        return [(row.event_id, row.seq) for row in rows]


async def letters(sessions: async_sessionmaker[AsyncSession], name: str) -> list[DeadLetter]:
    async with sessions() as session:
        return list(
            (await session.scalars(select(DeadLetter).where(DeadLetter.consumer == name))).all()
        )


async def test_a_poison_event_is_parked_and_the_others_apply(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reader = consumer(sessions)
    first, second = envelope(Thing, "a", seq=1), envelope(Thing, "a", seq=3)
    bad = poisoned(envelope(Thing, "a", seq=2), seq="two")
    poison_before = EVENTS_POISON.labels(reader.name, Thing.TYPE)._value.get()

    await reader.handle_batch([first, bad, second])
    await reader.handle_batch([first, bad, second])  # redelivered: nothing changes

    assert await applied(sessions) == [(first.id, 1), (second.id, 3)]
    (letter,) = await letters(sessions, reader.name)
    assert (letter.event_id, letter.type, letter.version) == (bad.id, Thing.TYPE, 1)
    assert letter.payload == bad.payload
    assert "seq" in letter.error
    assert EVENTS_POISON.labels(reader.name, Thing.TYPE)._value.get() - poison_before == 1
    async with sessions() as session:
        inbox = await session.scalars(
            select(InboxEntry.event_id).where(InboxEntry.consumer == reader.name)
        )
        assert set(inbox) == {first.id, bad.id, second.id}


async def test_a_fixed_dead_letter_applies_once_and_a_still_broken_one_stays_parked(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    reader = consumer(sessions)
    bad = poisoned(envelope(Thing, "a", seq=2), seq="two")
    await reader.handle_batch([bad])

    assert await reader.retry_dead_letter(bad.id) is False  # not fixed yet: parked again
    (letter,) = await letters(sessions, reader.name)
    assert letter.event_id == bad.id
    assert await applied(sessions) == []

    async with sessions() as session:  # the operator corrects the payload
        await session.execute(
            update(DeadLetter)
            .where(DeadLetter.consumer == reader.name, DeadLetter.event_id == bad.id)
            .values(payload={**bad.payload, "seq": 2})
        )
        await session.commit()
    assert await reader.retry_dead_letter(bad.id) is True
    assert await applied(sessions) == [(bad.id, 2)]
    assert await letters(sessions, reader.name) == []

    assert await reader.retry_dead_letter(bad.id) is None  # nothing left to retry
    await reader.handle_batch([bad])  # and a late redelivery finds the inbox row
    assert await applied(sessions) == [(bad.id, 2)]
    assert [letter.event_id for letter in await reader.dead_letters()] == []

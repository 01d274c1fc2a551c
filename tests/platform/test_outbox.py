"""Outbox, relay and inbox on both database backends, with the in-process transport.

The effect a consumer applies is a row in a test-only table (its own MetaData, created here), so
what "applied exactly once" means is simply: one row per event id.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.identity.events import UserRegistered
from haot.platform.events import Event
from haot.platform.inbox import Consumer, Handler, InboxEntry
from haot.platform.outbox import OutboxMessage, OutboxRelay
from haot.platform.settings import Settings
from haot.platform.transport import InProcessTransport
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from tests.support.contracts import Thing, envelope
from tests.support.effects import sessions_with

test_metadata = MetaData()
effects = Table(
    "test_outbox_effects",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("aggregate_id", String(100), nullable=False),
    Column("seq", Integer, nullable=False),
    # Lets a test make a handler hit a constraint of its own (not the inbox's).
    Column("marker", String(100), unique=True, nullable=True),
)

CONSUMER = "test.outbox_effects"


def thing(aggregate_id: str, seq: int, **payload: object) -> Event:
    return envelope(Thing, aggregate_id, seq=seq, **payload)


class RecordingTransport:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))


class FailingTransport(RecordingTransport):
    async def publish(self, events: Sequence[Event]) -> None:
        raise ConnectionError("broker down")


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_with(settings, effects) as sessions:
        yield sessions


@pytest.fixture
def uows(sessions: async_sessionmaker[AsyncSession]) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(sessions)


async def record_effect(uow: UnitOfWork, event: Thing) -> None:
    await uow.session.execute(
        insert(effects).values(
            event_id=event.token,
            aggregate_id=event.aggregate,
            seq=event.seq,
            marker=event.marker,
        )
    )


def effect_consumer(uows: UnitOfWorkFactory, handler: Handler[Thing] = record_effect) -> Consumer:
    return Consumer(CONSUMER, uows).on(Thing, handler)


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def applied(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[uuid.UUID, str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(effects.c.event_id, effects.c.aggregate_id, effects.c.seq).order_by(effects.c.id)
        )
        return [(row.event_id, row.aggregate_id, row.seq) for row in rows]


async def inbox_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        statement = select(func.count()).where(InboxEntry.consumer == CONSUMER)
        return int((await session.execute(statement)).scalar_one())


async def test_committed_unit_of_work_writes_its_events_to_the_outbox(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first, second = thing("agg-1", 1), thing("agg-2", 1)
    async with uows() as uow:
        uow.emit(first)
        uow.emit(second)
        await uow.commit()

    rows = await outbox_rows(sessions)
    assert [row.event_id for row in rows] == [first.id, second.id]
    assert rows[0].topic == "haot.lodging"
    assert rows[0].key == "agg-1"
    assert rows[0].type == Thing.TYPE
    assert rows[0].version == 1
    assert rows[0].payload["seq"] == 1
    assert all(row.published_at is None for row in rows)
    assert rows[0].to_event() == first


async def test_unit_of_work_without_commit_writes_no_events(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with uows() as uow:
        uow.emit(thing("agg-1", 1))
        await record_effect(uow, Thing.decode(thing("agg-1", 1)))

    async def fail_midway() -> None:
        async with uows() as uow:
            uow.emit(thing("agg-2", 1))
            await record_effect(uow, Thing.decode(thing("agg-2", 1)))
            await uow.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway()

    async with uows() as uow:
        uow.emit(thing("agg-3", 1))
        await uow.rollback()
        await uow.commit()  # nothing left to commit: the rollback dropped the recorded event

    assert await outbox_rows(sessions) == []
    assert await applied(sessions) == []


async def test_relay_publishes_in_id_order_and_marks_rows_published(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    emitted: list[Event] = []
    for unit in range(4):
        async with uows() as uow:
            for seq in range(3):
                event = thing(f"agg-{seq}", unit)
                uow.emit(event)
                emitted.append(event)
            await uow.commit()

    transport = RecordingTransport()
    relay = OutboxRelay(sessions, transport, batch_size=5)
    assert await relay.drain() == len(emitted)

    assert [len(batch) for batch in transport.batches] == [5, 5, 2]
    assert [e.id for batch in transport.batches for e in batch] == [e.id for e in emitted]
    rows = await outbox_rows(sessions)
    assert all(row.published_at is not None for row in rows)
    assert await relay.drain() == 0
    assert len(transport.batches) == 3


async def test_relay_leaves_rows_unpublished_when_the_transport_fails(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with uows() as uow:
        uow.emit(thing("agg-1", 1))
        await uow.commit()

    with pytest.raises(ConnectionError):
        await OutboxRelay(sessions, FailingTransport()).relay_once()
    assert [row.published_at for row in await outbox_rows(sessions)] == [None]

    transport = RecordingTransport()
    assert await OutboxRelay(sessions, transport).drain() == 1
    assert len(transport.batches) == 1


async def test_in_process_transport_delivers_to_consumer(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    transport = InProcessTransport()
    transport.subscribe(effect_consumer(uows))
    relay = OutboxRelay(sessions, transport, batch_size=3)
    emitted = [thing("agg-1", seq) for seq in range(7)]
    async with uows() as uow:
        for event in emitted:
            uow.emit(event)
        # An event of a context the consumer does not read is not delivered to it.
        uow.emit(UserRegistered(user_id=uuid.uuid4(), role="USER"))
        await uow.commit()

    assert await relay.drain() == 8

    assert await applied(sessions) == [(e.id, "agg-1", e.payload["seq"]) for e in emitted]
    assert await inbox_count(sessions) == 7


async def test_duplicate_delivery_is_applied_once(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    consumer = effect_consumer(uows)
    event, other = thing("agg-1", 1), thing("agg-1", 2)

    await consumer.handle_batch([event, event])  # the same event twice in one batch
    await consumer.handle_batch([event, other])  # and again in a later one
    await consumer.handle_batch([other])

    assert await applied(sessions) == [(event.id, "agg-1", 1), (other.id, "agg-1", 2)]
    assert await inbox_count(sessions) == 2


async def test_failing_handler_falls_back_to_single_events_and_the_others_apply(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    broken = {"b"}

    async def handler(uow: UnitOfWork, event: Thing) -> None:
        if event.aggregate in broken:
            raise ValueError("handler bug")
        await record_effect(uow, event)

    consumer = effect_consumer(uows, handler)
    a1, b1, a2, c1, b2 = thing("a", 1), thing("b", 1), thing("a", 2), thing("c", 1), thing("b", 2)
    batch = [a1, b1, a2, c1, b2]

    with pytest.raises(ValueError, match="handler bug"):
        await consumer.handle_batch(batch)

    # Every other event applied; b2 waits behind b1 so that aggregate b keeps its order.
    assert {e for e, _, _ in await applied(sessions)} == {a1.id, a2.id, c1.id}

    broken.clear()
    await consumer.handle_batch(batch)  # the transport redelivers the whole batch
    rows = await applied(sessions)
    assert sorted(e for e, _, _ in rows) == sorted(e.id for e in batch)
    assert [seq for _, agg, seq in rows if agg == "b"] == [1, 2]
    assert await inbox_count(sessions) == 5


async def test_handler_own_integrity_error_is_not_mistaken_for_a_duplicate(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    consumer = effect_consumer(uows)
    first = thing("agg-1", 1, marker="taken")
    clash = thing("agg-2", 1, marker="taken")  # its effect violates the test table's constraint

    await consumer.handle_batch([first])
    for _ in range(2):
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await consumer.handle_batch([clash])

    assert [e for e, _, _ in await applied(sessions)] == [first.id]
    assert await inbox_count(sessions) == 1  # the clashing event stays pending, not "done"


class SlowRecordingTransport(RecordingTransport):
    """Publishing takes a while, as over a network: long enough for relays to overtake."""

    async def publish(self, events: Sequence[Event]) -> None:
        await asyncio.sleep(random.uniform(0.001, 0.02))
        self.batches.append(list(events))


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_three_relays_publish_each_aggregate_in_order(
    uows: UnitOfWorkFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Three workers' relays on one database: each aggregate's events leave in the order they
    were written. With SKIP LOCKED alone, a relay claiming the next batch published it before
    the batch before it."""
    for seq in range(40):
        async with uows() as uow:
            for aggregate in range(5):  # interleaved: every batch holds every aggregate
                uow.emit(thing(f"agg-{aggregate}", seq))
            await uow.commit()
    transport = SlowRecordingTransport()
    relays = [OutboxRelay(sessions, transport, batch_size=7) for _ in range(3)]

    async def keep_draining(relay: OutboxRelay) -> None:
        for _ in range(200):
            await relay.drain()
            await asyncio.sleep(0)

    await asyncio.gather(*(keep_draining(relay) for relay in relays))
    published = [event for batch in transport.batches for event in batch]
    assert len(published) == 200
    assert len({event.id for event in published}) == 200  # none twice
    for aggregate in range(5):
        seqs = [e.payload["seq"] for e in published if e.aggregate_id == f"agg-{aggregate}"]
        assert seqs == list(range(40)), aggregate

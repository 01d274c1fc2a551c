"""Batch handlers in the inbox consumer, on both database backends: a run of consecutive events of
a batch-handled type goes to one call, in order, with the inbox rows in the same transaction; when
the batch fails, each event is retried alone (a one-event list)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.events import Event
from haot.platform.inbox import Consumer, InboxEntry
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from tests.support.contracts import Batched, Single, envelope
from tests.support.effects import sessions_with

test_metadata = MetaData()
effects = Table(
    "test_inbox_batch_effects",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("label", String(100), nullable=False),
)

CONSUMER = "test.inbox_batch"


def batched(label: str, aggregate_id: str = "agg") -> Event:
    return envelope(Batched, aggregate_id, label=label)


def single(label: str, aggregate_id: str = "agg") -> Event:
    return envelope(Single, aggregate_id, label=label)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_with(settings, effects) as sessions:
        yield sessions


class Recorder:
    """The handlers: each records its events as effect rows and the calls it received."""

    def __init__(self, *, broken: set[str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.broken = broken if broken is not None else set()

    async def many(self, uow: UnitOfWork, events: Sequence[Batched]) -> None:
        self.calls.append([e.label for e in events])
        for event in events:
            if event.label in self.broken:
                raise ValueError("handler bug")
        await uow.session.execute(
            insert(effects), [{"event_id": e.token, "label": e.label} for e in events]
        )

    async def one(self, uow: UnitOfWork, event: Single) -> None:
        self.calls.append([event.label])
        await uow.session.execute(insert(effects).values(event_id=event.token, label=event.label))

    def consumer(self, sessions: async_sessionmaker[AsyncSession]) -> Consumer:
        return (
            Consumer(CONSUMER, UnitOfWorkFactory(sessions))
            .on(Single, self.one)
            .on_batch(Batched, self.many)
        )


async def applied(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(select(effects.c.label).order_by(effects.c.id))).all())


async def inbox_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        statement = select(func.count()).where(InboxEntry.consumer == CONSUMER)
        return int((await session.execute(statement)).scalar_one())


async def test_consecutive_events_of_a_batched_type_go_to_one_call_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recorder = Recorder()
    batch = [batched("b1"), batched("b2"), single("s1"), batched("b3"), batched("b4")]

    await recorder.consumer(sessions).handle_batch(batch)

    assert recorder.calls == [["b1", "b2"], ["s1"], ["b3", "b4"]]
    assert await applied(sessions) == ["b1", "b2", "s1", "b3", "b4"]
    assert await inbox_count(sessions) == 5


async def test_a_batch_handler_sees_only_fresh_events(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recorder = Recorder()
    consumer = recorder.consumer(sessions)
    b1, b2, b3 = batched("b1"), batched("b2"), batched("b3")

    await consumer.handle_batch([b1, b1, b2])  # the same event twice in one batch
    await consumer.handle_batch([b1, b2, b3])  # and again in a later one
    await consumer.handle_batch([b1, b2, b3])  # nothing fresh: no call at all

    assert recorder.calls == [["b1", "b2"], ["b3"]]
    assert await applied(sessions) == ["b1", "b2", "b3"]
    assert await inbox_count(sessions) == 3


async def test_a_failing_batch_is_retried_one_event_list_at_a_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recorder = Recorder(broken={"x1"})
    consumer = recorder.consumer(sessions)
    batch = [batched("a1", "a"), batched("x1", "x"), batched("a2", "a"), batched("x2", "x")]

    with pytest.raises(ValueError, match="handler bug"):
        await consumer.handle_batch(batch)

    # The batch call, then each event alone; x2 waits behind x1 so that aggregate x keeps order.
    assert recorder.calls == [["a1", "x1", "a2", "x2"], ["a1"], ["x1"], ["a2"]]
    assert await applied(sessions) == ["a1", "a2"]
    assert await inbox_count(sessions) == 2  # nothing of the failed batch call was kept

    recorder.broken.clear()
    recorder.calls.clear()
    await consumer.handle_batch(batch)  # redelivered
    assert recorder.calls == [["x1", "x2"]]
    assert await applied(sessions) == ["a1", "a2", "x1", "x2"]
    assert await inbox_count(sessions) == 4


def test_an_event_type_has_one_handler() -> None:
    recorder, uows = Recorder(), UnitOfWorkFactory(async_sessionmaker())
    consumer = Consumer(CONSUMER, uows).on_batch(Batched, recorder.many)
    with pytest.raises(ValueError, match=Batched.TYPE):
        consumer.on(Batched, recorder.one)  # type: ignore[arg-type]
    assert consumer.sources == frozenset({"lodging"})

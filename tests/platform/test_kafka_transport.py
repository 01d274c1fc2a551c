"""KafkaTransport against a real broker (tansu) and PostgreSQL: outbox, relay, Kafka, consumer."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.events import Event
from haot.platform.inbox import Consumer, InboxEntry
from haot.platform.kafka import KafkaTransport
from haot.platform.outbox import OutboxRelay
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from tests.conftest import make_settings
from tests.support.contracts import CrashThing
from tests.support.effects import sessions_with
from tests.support.event_worker import (
    duplicates_skipped,
    effect_consumer,
    effect_handler,
    effects,
    thing,
)
from tests.support.services import free_port
from tests.support.tansu import kafka_overrides

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.parametrize("backend", ["postgres"]),
]

WAIT_SECONDS = 30.0


@pytest.fixture
def kafka_settings(database_url: str, kafka_bootstrap: str) -> Settings:
    return make_settings(
        database_url,
        **kafka_overrides(kafka_bootstrap, "transport", partitions=4),
        outbox_batch_size=50,
        consumer_batch_size=40,
    )


@pytest.fixture
async def sessions(kafka_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_with(kafka_settings, effects) as sessions:
        yield sessions


@pytest.fixture
async def transport(kafka_settings: Settings) -> AsyncIterator[KafkaTransport]:
    kafka = KafkaTransport(kafka_settings)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


class CountingConsumer:
    """Counts what the transport delivered before handing it on."""

    def __init__(self, inner: Consumer) -> None:
        self.name = inner.name
        self.sources = inner.sources
        self._inner = inner
        self.received = 0
        self.handled = 0  # events of batches that handle_batch completed
        self.failed_batches = 0

    async def handle_batch(self, events: Sequence[Event]) -> None:
        self.received += len(events)
        try:
            await self._inner.handle_batch(events)
        except Exception:
            self.failed_batches += 1
            raise
        self.handled += len(events)


async def write_events(uows: UnitOfWorkFactory, aggregates: int, per_aggregate: int) -> list[Event]:
    """Events with a per-aggregate sequence, interleaved across aggregates, ten per transaction."""
    order = [agg for agg in range(aggregates) for _ in range(per_aggregate)]
    random.Random(7).shuffle(order)
    next_seq = dict.fromkeys(range(aggregates), 0)
    events: list[Event] = []
    for agg in order:
        events.append(thing(f"agg-{agg}", next_seq[agg]))
        next_seq[agg] += 1
    for start in range(0, len(events), 10):
        async with uows() as uow:
            for event in events[start : start + 10]:
                uow.emit(event)
            await uow.commit()
    return events


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_SECONDS:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


async def applied_rows(
    sessions: async_sessionmaker[AsyncSession], consumer: str
) -> list[tuple[uuid.UUID, str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(effects.c.event_id, effects.c.aggregate_id, effects.c.seq)
            .where(effects.c.consumer == consumer)
            .order_by(effects.c.id)
        )
        return [(row.event_id, row.aggregate_id, row.seq) for row in rows]


def assert_applied_exactly_once_in_order(
    rows: list[tuple[uuid.UUID, str, int]], events: list[Event]
) -> None:
    assert len(rows) == len(events)
    assert {event_id for event_id, _, _ in rows} == {e.id for e in events}
    per_aggregate: dict[str, list[int]] = {}
    for _, aggregate, seq in rows:
        per_aggregate.setdefault(aggregate, []).append(seq)
    for aggregate, seqs in per_aggregate.items():
        assert seqs == sorted(seqs), f"{aggregate} applied out of order: {seqs}"


async def run_consumer_until(
    transport: KafkaTransport, consumer: CountingConsumer, done: Callable[[], Awaitable[bool]]
) -> None:
    stop = asyncio.Event()
    task = asyncio.ensure_future(transport.consumer_loop(consumer)(stop))
    try:

        async def finished() -> bool:
            if task.done():
                task.result()  # a crashed loop fails the test with its own error
            return await done()

        await wait_for(finished, "the consumer to apply every event")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_relay_to_consumer_applies_every_event_once_in_aggregate_order(
    kafka_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    transport: KafkaTransport,
) -> None:
    uows = UnitOfWorkFactory(sessions, topic_prefix=kafka_settings.kafka_topic_prefix)
    events = await write_events(uows, aggregates=12, per_aggregate=25)
    relay = OutboxRelay(sessions, transport, batch_size=kafka_settings.outbox_batch_size)
    assert await relay.drain() == len(events)
    # A relay that died before marking its batch publishes it again: the consumer must shrug.
    redelivered = events[:60]
    await transport.publish(redelivered)

    name = f"test.kafka.{uuid.uuid4().hex[:6]}"
    consumer = CountingConsumer(effect_consumer(name, uows))
    skipped_before = duplicates_skipped(name)

    async def all_delivered() -> bool:
        return consumer.handled >= len(events) + len(redelivered)

    await run_consumer_until(transport, consumer, all_delivered)

    assert_applied_exactly_once_in_order(await applied_rows(sessions, name), events)
    assert duplicates_skipped(name) - skipped_before == len(redelivered)
    async with sessions() as session:
        inbox = await session.scalar(
            select(func.count()).select_from(InboxEntry).where(InboxEntry.consumer == name)
        )
    assert inbox == len(events)


async def test_failed_batch_is_not_committed_but_retried(
    kafka_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    transport: KafkaTransport,
) -> None:
    uows = UnitOfWorkFactory(sessions, topic_prefix=kafka_settings.kafka_topic_prefix)
    events = await write_events(uows, aggregates=3, per_aggregate=10)
    assert await OutboxRelay(sessions, transport).drain() == len(events)

    name = f"test.kafka.{uuid.uuid4().hex[:6]}"
    record = effect_handler(name)
    flaky = events[len(events) // 2]
    failures = 0

    async def flaky_handler(uow: UnitOfWork, event: CrashThing) -> None:
        nonlocal failures
        # Fails the batch, then alone (so the batch raises), then in the redelivered batch.
        if event.token == flaky.id and failures < 3:
            failures += 1
            raise RuntimeError("transient failure")
        await record(uow, event)

    consumer = CountingConsumer(Consumer(name, uows).on(CrashThing, flaky_handler))

    async def all_applied() -> bool:
        return len(await applied_rows(sessions, name)) >= len(events)

    await run_consumer_until(transport, consumer, all_applied)

    assert failures == 3
    assert consumer.failed_batches == 1
    assert consumer.received > len(events)  # the failed batch was read again, not committed
    assert_applied_exactly_once_in_order(await applied_rows(sessions, name), events)


async def test_ping(transport: KafkaTransport, kafka_settings: Settings) -> None:
    assert await transport.ping()
    unstarted = KafkaTransport(kafka_settings)
    assert await unstarted.ping()
    nowhere = kafka_settings.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"}
    )
    started = time.monotonic()
    assert not await KafkaTransport(nowhere).ping()
    assert time.monotonic() - started < 5

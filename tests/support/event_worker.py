"""A relay or a consumer in a process of its own, for the crash test (and helpers for Kafka tests).

    python -m tests.support.event_worker relay|consumer

Configured by ``HAOT_*`` variables (database, broker, prefixes, batch sizes) plus:

- ``EVENT_WORKER_CRASH_AFTER=k``: ``os._exit(137)`` right after the k-th batch, at the worst
  moment: the relay after the broker acknowledged the batch but before the rows are marked
  published; the consumer after the batch was applied (committed in the database) but before the
  Kafka offsets are committed.
- ``EVENT_WORKER_DELAY=s``: the relay sleeps this long between publishing and marking, the
  consumer this long per event inside its transaction (so a SIGKILL lands mid-batch).
- ``EVENT_WORKER_JOURNAL=path``: one JSON line per batch (what was delivered, what the inbox
  skipped), written with ``O_APPEND`` before any injected crash so that it survives it.

SIGTERM stops it gracefully (exit 0).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, insert

from haot.platform.db import Databases
from haot.platform.events import Event
from haot.platform.inbox import Consumer, Handler
from haot.platform.kafka import KafkaTransport
from haot.platform.outbox import OutboxRelay
from haot.platform.settings import Settings
from haot.platform.transport import BatchHandler, Transport
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from tests.support.contracts import CrashThing, envelope

CRASH_EXIT_CODE = 137
CONSUMER_NAME = "test.event_effects"

test_metadata = MetaData()
# No unique constraint on event_id on purpose: a duplicate effect must show up as a second row,
# not be hidden by a constraint error.
effects = Table(
    "test_event_effects",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("aggregate_id", String(100), nullable=False),
    Column("seq", Integer, nullable=False),
)


def thing(aggregate_id: str, seq: int) -> Event:
    return envelope(CrashThing, aggregate_id, seq=seq)


def effect_handler(consumer: str, delay: float = 0.0) -> Handler[CrashThing]:
    async def record(uow: UnitOfWork, event: CrashThing) -> None:
        if delay:
            await asyncio.sleep(delay)
        await uow.session.execute(
            insert(effects).values(
                consumer=consumer,
                event_id=event.token,
                aggregate_id=event.aggregate,
                seq=event.seq,
            )
        )

    return record


def effect_consumer(name: str, uows: UnitOfWorkFactory, delay: float = 0.0) -> Consumer:
    return Consumer(name, uows).on(CrashThing, effect_handler(name, delay))


def duplicates_skipped(consumer: str) -> float:
    value = REGISTRY.get_sample_value("haot_events_duplicate_total", {"consumer": consumer})
    return value or 0.0


class Journal:
    def __init__(self, path: str | None) -> None:
        self._path = path

    def write(self, **entry: Any) -> None:
        if not self._path:
            return
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, orjson.dumps({"pid": os.getpid(), **entry}) + b"\n")
        finally:
            os.close(fd)


class CrashingTransport:
    """Publishes through ``inner``, then maybe dies before the relay can mark the rows."""

    def __init__(self, inner: Transport, journal: Journal, crash_after: int, delay: float) -> None:
        self._inner = inner
        self._journal = journal
        self._crash_after = crash_after
        self._delay = delay
        self._batches = 0

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        await self._inner.publish(events)
        self._batches += 1
        self._journal.write(role="relay", published=len(events), ids=[str(e.id) for e in events])
        if self._batches == self._crash_after:
            os._exit(CRASH_EXIT_CODE)
        if self._delay:
            await asyncio.sleep(self._delay)


class CrashingConsumer:
    """Applies through ``inner``, then maybe dies before the consumer loop commits offsets."""

    def __init__(self, inner: Consumer, journal: Journal, crash_after: int) -> None:
        self.name = inner.name
        self.sources = inner.sources
        self._inner = inner
        self._journal = journal
        self._crash_after = crash_after
        self._batches = 0

    async def handle_batch(self, events: Sequence[Event]) -> None:
        before = duplicates_skipped(self.name)
        await self._inner.handle_batch(events)
        self._batches += 1
        self._journal.write(
            role="consumer",
            delivered=len(events),
            duplicates=int(duplicates_skipped(self.name) - before),
        )
        if self._batches == self._crash_after:
            os._exit(CRASH_EXIT_CODE)


async def run_relay(settings: Settings, stop: asyncio.Event, journal: Journal) -> None:
    databases = Databases(settings)
    transport = CrashingTransport(
        KafkaTransport(settings),
        journal,
        crash_after=int(os.environ.get("EVENT_WORKER_CRASH_AFTER", "0")),
        delay=float(os.environ.get("EVENT_WORKER_DELAY", "0")),
    )
    await transport.start()
    try:
        relay = OutboxRelay(
            databases.sessions_for("platform"),
            transport,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_seconds,
        )
        await relay.run(stop)
    finally:
        await transport.stop()
        await databases.dispose()


async def run_consumer(settings: Settings, stop: asyncio.Event, journal: Journal) -> None:
    databases = Databases(settings)
    name = os.environ.get("EVENT_WORKER_CONSUMER", CONSUMER_NAME)
    delay = float(os.environ.get("EVENT_WORKER_DELAY", "0"))
    consumer = effect_consumer(name, UnitOfWorkFactory(databases.sessions_for("platform")), delay)
    handler: BatchHandler = CrashingConsumer(
        consumer, journal, crash_after=int(os.environ.get("EVENT_WORKER_CRASH_AFTER", "0"))
    )
    try:
        await KafkaTransport(settings).consumer_loop(handler)(stop)
    finally:
        await databases.dispose()


async def main(role: str) -> None:
    settings = Settings()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    journal = Journal(os.environ.get("EVENT_WORKER_JOURNAL"))
    journal.write(role=role, started=True, run=str(uuid.uuid4()))
    if role == "relay":
        await run_relay(settings, stop, journal)
    elif role == "consumer":
        await run_consumer(settings, stop, journal)
    else:
        raise SystemExit(f"unknown role {role!r}: relay or consumer")
    journal.write(role=role, stopped=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else ""))

"""Transactional outbox: rows written with the state change, published later by the relay.

The relay claims unpublished rows in id order with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
has one writer anyway), hands them to the transport, which returns only once the broker has them,
and marks them published in the same transaction (on SQLite: in a second one, see
``_relay_once_sqlite``). A crash between publish and mark re-publishes the batch: delivery is
at-least-once, and consumers make the effect exactly-once with the inbox.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    SmallInteger,
    String,
    Uuid,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.clock import utcnow
from haot.platform.db import Base, UtcDateTime
from haot.platform.events import Event, topic_for
from haot.platform.locks import lock_for_transaction
from haot.platform.metrics import OUTBOX_PUBLISHED, OUTBOX_RELAY_ERRORS
from haot.platform.observability import active_tracing
from haot.platform.transport import Transport

log = structlog.get_logger(__name__)

_Id = BigInteger().with_variant(Integer, "sqlite")


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The W3C trace context of the request or consumer that wrote the row (None: written outside
    # of one, or before the column existed); the transport carries it to the consumers.
    trace_parent: Mapped[str | None] = mapped_column(String(55), default=None)

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=published_at.is_(None),
            sqlite_where=published_at.is_(None),
        ),
    )

    @classmethod
    def from_event(cls, event: Event, topic_prefix: str = "haot.") -> OutboxMessage:
        topic = topic_for(event.context, topic_prefix)
        trace_parent = event.trace_parent
        if (tracing := active_tracing()) is not None:
            # Writing the row is the send (transactional outbox): its PRODUCER span, a child of
            # whoever made the event, is what the row carries and the consumers continue.
            trace_parent = tracing.producer_span(
                f"publish {event.type}",
                trace_parent,
                {
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "publish",
                    "messaging.destination.name": topic,
                    "messaging.message.id": str(event.id),
                    "haot.event.type": event.type,
                    "haot.aggregate_id": event.aggregate_id,
                },
            )
        return cls(
            event_id=event.id,
            topic=topic,
            key=event.aggregate_id,
            type=event.type,
            version=event.version,
            payload=event.payload,
            occurred_at=event.occurred_at,
            trace_parent=trace_parent,
        )

    def to_event(self) -> Event:
        return Event(
            id=self.event_id,
            type=self.type,
            version=self.version,
            aggregate_id=self.key,
            payload=self.payload,
            occurred_at=self.occurred_at,
            trace_parent=self.trace_parent,
        )


async def claim_unpublished(session: AsyncSession, limit: int) -> Sequence[OutboxMessage]:
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.published_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(statement)).all()


async def count_unpublished(session: AsyncSession) -> int:
    from sqlalchemy import func

    statement = select(func.count()).where(OutboxMessage.published_at.is_(None))
    return int((await session.execute(statement)).scalar_one())


# The key of the per-database relay lock (any fixed value: one lock per database).
_RELAY_LOCK = uuid.UUID("6f75f6b0-3b1d-4c47-9a0e-7f3f2a1c0001")


class OutboxRelay:
    """Moves outbox rows of one database to the transport."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: Transport,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._transport = transport
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that wrote events, so they leave without waiting for the poll."""
        self._wakeup.set()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        async with self._sessions() as session:
            if session.get_bind().dialect.name == "sqlite":
                published = await self._relay_once_sqlite(session)
            else:
                published = await self._relay_once_locked(session)
        if published:
            OUTBOX_PUBLISHED.inc(published)
        return published

    async def _relay_once_locked(self, session: AsyncSession) -> int:
        # One relay publishes a database's outbox at a time, whatever the number of workers:
        # two relays claiming consecutive batches (SKIP LOCKED) could publish the second before
        # the first, and an aggregate's CANCELLED would overtake its CONFIRMED. The others wait
        # for the lock, then claim what is left after the batch before them was marked.
        async with session.begin():
            await lock_for_transaction(session, "outbox-relay", _RELAY_LOCK)
            rows = await claim_unpublished(session, self._batch_size)
            if not rows:
                return 0
            await self._transport.publish([row.to_event() for row in rows])
            await self._mark_published(session, [row.id for row in rows])
        return len(rows)

    async def _relay_once_sqlite(self, session: AsyncSession) -> int:
        # SQLite has one writer, and a transaction here takes the write lock at BEGIN: holding it
        # while the in-process transport runs consumers (which write to the same file) would
        # block them until the busy timeout. One process relays a SQLite database, so nothing
        # else can claim the rows between these two short transactions.
        async with session.begin():
            rows = await claim_unpublished(session, self._batch_size)
            events = [row.to_event() for row in rows]
        if not events:
            return 0
        await self._transport.publish(events)
        async with session.begin():
            await self._mark_published(session, [row.id for row in rows])
        return len(events)

    @staticmethod
    async def _mark_published(session: AsyncSession, ids: list[int]) -> None:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.published_at.is_(None))
            .values(published_at=utcnow())
        )

    async def drain(self) -> int:
        """Publish until nothing is left; returns the total published."""
        total = 0
        while published := await self.relay_once():
            total += published
        return total

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self._poll_interval
        while not stop.is_set():
            try:
                published = await self.drain()
                backoff = self._poll_interval
            except Exception:
                OUTBOX_RELAY_ERRORS.inc()
                log.exception("outbox_relay_failed")
                published = 0
                backoff = min(backoff * 2, 10.0)
            if published:
                continue
            self._wakeup.clear()
            waiters = [asyncio.create_task(self._wakeup.wait()), asyncio.create_task(stop.wait())]
            try:
                await asyncio.wait(waiters, timeout=backoff, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when the relay itself is cancelled: no waiter may outlive it.
                for task in waiters:
                    task.cancel()

"""Idempotent consumers: the inbox row (consumer, event id) is written in the same transaction as
the effect, so a redelivered event finds its row and is skipped: at-least-once delivery becomes an
exactly-once effect.

A batch is applied in one transaction (the fast path). If that fails (a handler error, or another
consumer instance applied one of the events first and the inbox insert conflicts) the batch is
retried one event per transaction, so one bad event cannot hide the others' progress.

A handler takes one event (``EventHandler``) or, where per-event round trips would be the cost, a
run of consecutive events of its type (``BatchEventHandler``): it then sees every fresh event of
that run in one call, and a one-event list when the batch is retried event by event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from itertools import groupby

import structlog
from sqlalchemy import String, Uuid, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.clock import utcnow
from haot.platform.db import Base, UtcDateTime
from haot.platform.events import Event
from haot.platform.metrics import EVENTS_CONSUMED, EVENTS_DUPLICATE
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

EventHandler = Callable[[UnitOfWork, Event], Awaitable[None]]
BatchEventHandler = Callable[[UnitOfWork, Sequence[Event]], Awaitable[None]]


class InboxEntry(Base):
    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Consumer:
    """Routes events by type to handlers, each event applied once per (consumer name, event id).
    An event type has either a per-event handler or a batch handler, not both."""

    def __init__(
        self,
        name: str,
        uow_factory: UnitOfWorkFactory,
        handlers: Mapping[str, EventHandler] | None = None,
        *,
        batch_handlers: Mapping[str, BatchEventHandler] | None = None,
    ) -> None:
        self.name = name
        self._uow_factory = uow_factory
        self._handlers = dict(handlers or {})
        self._batch_handlers = dict(batch_handlers or {})
        if both := self._handlers.keys() & self._batch_handlers.keys():
            raise ValueError(f"event types with two handlers: {sorted(both)}")
        self._types = frozenset(self._handlers.keys() | self._batch_handlers.keys())
        self.sources = frozenset(event_type.split(".", 1)[0] for event_type in self._types)

    async def handle_batch(self, events: Sequence[Event]) -> None:
        """Apply a batch; raises if any event failed (after applying every event it could), so the
        transport delivers the batch again and the inbox skips what was applied."""
        relevant = [e for e in events if e.type in self._types]
        if not relevant:
            return
        try:
            await self._apply(relevant)
            return
        except Exception:
            log.warning("consumer_batch_retry_singly", consumer=self.name, size=len(relevant))
        first_error: Exception | None = None
        failed_aggregates: set[str] = set()
        for event in relevant:
            if event.aggregate_id in failed_aggregates:
                continue  # per-aggregate order: its later events wait until this one applies
            try:
                await self._apply_one(event)
            except Exception as exc:
                log.exception(
                    "consumer_event_failed",
                    consumer=self.name,
                    event_id=str(event.id),
                    event_type=event.type,
                )
                failed_aggregates.add(event.aggregate_id)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    async def _apply_one(self, event: Event) -> None:
        try:
            await self._apply([event])
        except IntegrityError:
            # Another instance may have applied it between our inbox check and our insert: a
            # second attempt then finds its inbox row and skips. A conflict raised by the handler
            # itself raises again, and the event is retried later instead of silently dropped.
            await self._apply([event])

    async def _apply(self, events: Sequence[Event]) -> None:
        async with self._uow_factory() as uow:
            seen = set(
                (
                    await uow.session.scalars(
                        select(InboxEntry.event_id).where(
                            InboxEntry.consumer == self.name,
                            InboxEntry.event_id.in_([e.id for e in events]),
                        )
                    )
                ).all()
            )
            fresh: list[Event] = []
            for event in events:
                if event.id in seen:
                    continue
                seen.add(event.id)  # a batch may carry the same event twice
                fresh.append(event)
            now = utcnow()
            if fresh:  # one multi-row INSERT; a row another instance wrote first fails it here
                await uow.session.execute(
                    insert(InboxEntry),
                    [
                        {"consumer": self.name, "event_id": event.id, "processed_at": now}
                        for event in fresh
                    ],
                )
            # Runs of one type keep the batch's order: a batch handler sees each run whole.
            for event_type, run in groupby(fresh, key=lambda event: event.type):
                if (batch_handler := self._batch_handlers.get(event_type)) is not None:
                    await batch_handler(uow, list(run))
                    continue
                for event in run:
                    await self._handlers[event_type](uow, event)
            await uow.commit()
        EVENTS_CONSUMED.labels(self.name).inc(len(fresh))
        if duplicates := len(events) - len(fresh):
            EVENTS_DUPLICATE.labels(self.name).inc(duplicates)

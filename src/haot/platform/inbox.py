"""Idempotent consumers: the inbox row (consumer, event id) is written in the same transaction as
the effect, so a redelivered event finds its row and is skipped: at-least-once delivery becomes an
exactly-once effect.

A batch is applied in one transaction (the fast path). If that fails (a handler error, or another
consumer instance applied one of the events first and the inbox insert conflicts) the batch is
retried one event per transaction, so one bad event cannot hide the others' progress.

A handler takes one event (``on``) or, where per-event round trips would be the cost, a run of
consecutive events of its type (``on_batch``): it then sees every fresh event of that run in one
call, and a one-event list when the batch is retried event by event. Either way it receives the
events decoded into their contract; one that does not decode is parked as a dead letter.

A handler runs under the trace of its event (``trace_bound``: the trace id its producer wrote, a
span of the consumer's own), so its log lines and the events it emits continue that trace. A run
given to a batch handler continues a trace only if all of its events share one; a run of several
traces (concurrent requests) gets a trace of its own. With traces on, that span is a CONSUMER
span named ``process <event type>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, Self, TypeVar

import structlog
from sqlalchemy import JSON, SmallInteger, String, Text, Uuid, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from haot.platform.clock import utcnow
from haot.platform.db import Base, UtcDateTime
from haot.platform.events import Event, EventBody, PoisonEvent
from haot.platform.metrics import EVENTS_CONSUMED, EVENTS_DUPLICATE, EVENTS_POISON
from haot.platform.observability import trace_bound, trace_id_of
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

B = TypeVar("B", bound=EventBody)

Handler = Callable[[UnitOfWork, B], Awaitable[None]]
BatchHandler = Callable[[UnitOfWork, Sequence[B]], Awaitable[None]]


class InboxEntry(Base):
    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeadLetter(Base):
    """A poison event a consumer parked: kept whole, so that once the cause is fixed it can be
    delivered again (``haot events requeue``)."""

    __tablename__ = "event_dead_letters"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(SmallInteger)
    aggregate_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    error: Mapped[str] = mapped_column(Text)
    parked_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def event(self) -> Event:
        return Event(
            id=self.event_id,
            type=self.type,
            version=self.version,
            aggregate_id=self.aggregate_id,
            payload=self.payload,
            occurred_at=self.occurred_at,
            trace_parent=None,  # not kept: a retried dead letter starts a trace of its own
        )


@dataclass(frozen=True, slots=True)
class _Route:
    contract: type[EventBody]
    handler: Callable[[UnitOfWork, Any], Awaitable[None]]
    batched: bool


class Consumer:
    """Routes events by type to handlers, each event applied once per (consumer name, event id).
    A handler receives the event decoded into its contract; an event type has one handler, taking
    one event (``on``) or a run of them (``on_batch``)."""

    def __init__(self, name: str, uow_factory: UnitOfWorkFactory) -> None:
        self.name = name
        self._uow_factory = uow_factory
        self._routes: dict[str, _Route] = {}
        self._types: frozenset[str] = frozenset()
        self.sources: frozenset[str] = frozenset()

    def on(self, contract: type[B], handler: Handler[B]) -> Self:
        return self._route(_Route(contract, handler, batched=False))

    def on_batch(self, contract: type[B], handler: BatchHandler[B]) -> Self:
        return self._route(_Route(contract, handler, batched=True))

    def _route(self, route: _Route) -> Self:
        if route.contract.TYPE in self._routes:
            raise ValueError(f"{route.contract.TYPE} has two handlers in {self.name}")
        self._routes[route.contract.TYPE] = route
        self._types = frozenset(self._routes)
        self.sources = frozenset(event_type.split(".", 1)[0] for event_type in self._types)
        return self

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
            with trace_bound(event.trace_parent):
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

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with self._uow_factory() as uow:
            statement = (
                select(DeadLetter)
                .where(DeadLetter.consumer == self.name)
                .order_by(DeadLetter.parked_at)
                .limit(limit)
            )
            return list((await uow.session.scalars(statement)).all())

    async def retry_dead_letter(self, event_id: uuid.UUID) -> bool | None:
        """Apply a parked event again, once its cause is fixed (a consumer that reads it now, or
        a corrected payload): True if it applied, False if it was parked again, None if there is
        no such dead letter. Unparking and applying are one transaction: it cannot get lost."""
        async with self._uow_factory() as uow:
            letter = await uow.session.get(DeadLetter, (self.name, event_id), with_for_update=True)
            if letter is None:
                return None
            event = letter.event()
            await uow.session.delete(letter)
            await uow.session.execute(
                delete(InboxEntry).where(
                    InboxEntry.consumer == self.name, InboxEntry.event_id == event_id
                )
            )
            await uow.session.flush()
            applied = await self._apply_in(uow, [event])
            await uow.commit()
        EVENTS_CONSUMED.labels(self.name).inc(applied)
        return applied == 1

    async def _apply(self, events: Sequence[Event]) -> None:
        async with self._uow_factory() as uow:
            applied = await self._apply_in(uow, events)
            await uow.commit()
        EVENTS_CONSUMED.labels(self.name).inc(applied)

    async def _apply_in(self, uow: UnitOfWork, events: Sequence[Event]) -> int:
        """Apply the events this consumer has not seen, in ``uow``; returns how many it applied
        (parked poison events not counted)."""
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
        applicable = await self._decode(uow, fresh, now)
        # Runs of one type keep the batch's order: a batch handler sees each run whole.
        for event_type, run in groupby(applicable, key=lambda pair: pair[0].type):
            route = self._routes[event_type]
            pairs = list(run)
            if route.batched:
                with trace_bound(
                    _shared_trace_parent([event for event, _ in pairs]),
                    name=f"process {event_type}",
                    attributes={"messaging.consumer.group.name": self.name},
                ):
                    await route.handler(uow, [body for _, body in pairs])
                continue
            for event, body in pairs:
                with trace_bound(
                    event.trace_parent,
                    name=f"process {event.type}",
                    attributes={
                        "messaging.consumer.group.name": self.name,
                        "messaging.message.id": str(event.id),
                    },
                ):
                    await route.handler(uow, body)
        if duplicates := len(events) - len(fresh):
            EVENTS_DUPLICATE.labels(self.name).inc(duplicates)
        return len(applicable)

    async def _decode(
        self, uow: UnitOfWork, events: Sequence[Event], now: datetime
    ) -> list[tuple[Event, EventBody]]:
        """Each event with its decoded contract. A poison event is parked in the same transaction
        as its inbox row (it is never applied with a guessed value, and never blocks the events
        behind it), counted and logged, so that someone fixes the cause and requeues it."""
        decoded: list[tuple[Event, EventBody]] = []
        for event in events:
            try:
                decoded.append((event, self._routes[event.type].contract.decode(event)))
            except PoisonEvent as exc:
                EVENTS_POISON.labels(self.name, event.type).inc()
                with trace_bound(event.trace_parent):
                    log.error(
                        "consumer_event_poison",
                        consumer=self.name,
                        event_id=str(event.id),
                        event_type=event.type,
                        event_version=event.version,
                        error=str(exc),
                    )
                uow.session.add(
                    DeadLetter(
                        consumer=self.name,
                        event_id=event.id,
                        type=event.type,
                        version=event.version,
                        aggregate_id=event.aggregate_id,
                        payload=event.payload,
                        occurred_at=event.occurred_at,
                        error=str(exc)[:2000],
                        parked_at=now,
                    )
                )
        return decoded


def _shared_trace_parent(events: Sequence[Event]) -> str | None:
    """The trace context of the first event if every event is of the same trace, else None."""
    first = trace_id_of(events[0].trace_parent)
    if first is None or any(trace_id_of(e.trace_parent) != first for e in events[1:]):
        return None
    return events[0].trace_parent

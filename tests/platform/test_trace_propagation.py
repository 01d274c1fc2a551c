"""The trace id follows an event (issue 16, item 5): the outbox row written inside a request carries
the request's trace context, the transport takes it to the consumer (in-process: the event itself;
Kafka: the record's ``traceparent`` header), and the consumer's log lines and the outbox rows it
writes continue that trace, under a span of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
import structlog
from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.db import Databases
from haot.platform.events import Event, EventBody
from haot.platform.inbox import Consumer, Handler
from haot.platform.kafka import KafkaTransport
from haot.platform.observability import configure_logging, trace_bound, trace_id_of
from haot.platform.outbox import OutboxMessage, OutboxRelay
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import CurrentUser
from tests.conftest import make_settings
from tests.platform.conftest import bearer, build_probe_app, one_backend, serve
from tests.platform.test_observability import json_lines
from tests.support.tansu import kafka_overrides

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
WAIT_SECONDS = 30.0


class TracedAsked(EventBody):
    TYPE: ClassVar[str] = "lodging.test_traced_asked"
    aggregate: str

    def aggregate_id(self) -> str:
        return self.aggregate


class TracedAnswered(EventBody):
    TYPE: ClassVar[str] = "lodging.test_traced_answered"
    aggregate: str

    def aggregate_id(self) -> str:
        return self.aggregate


def answering() -> Handler[TracedAsked]:
    """A handler that logs (structlog and a library's logger) and writes an event of its own."""

    async def answer(uow: UnitOfWork, event: TracedAsked) -> None:
        structlog.get_logger("test.consumer").info("traced_handled", aggregate=event.aggregate)
        logging.getLogger("test.consumer.library").warning("traced_library_line")
        uow.emit(TracedAnswered(aggregate=event.aggregate))

    return answer


asking = APIRouter(prefix="/probe/traced")


@asking.post("/ask", status_code=201)
async def ask(principal: CurrentUser, request: Request) -> dict[str, str]:
    aggregate = uuid.uuid4().hex
    async with request.app.state.platform.uow_factory("lodging")() as uow:
        uow.emit(TracedAsked(aggregate=aggregate))
        await uow.commit()
    return {"aggregate": aggregate}


async def outbox_rows(
    sessions: async_sessionmaker[AsyncSession], aggregate: str, count: int
) -> dict[str, OutboxMessage]:
    """The aggregate's outbox rows by event type, once there are ``count`` of them."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        async with sessions() as session:
            rows = (
                await session.scalars(select(OutboxMessage).where(OutboxMessage.key == aggregate))
            ).all()
        if len(rows) >= count:
            return {row.type: row for row in rows}
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(rows)} of {count} outbox rows after {WAIT_SECONDS:.0f}s")
        await asyncio.sleep(0.05)


def span_of(traceparent: str | None) -> str:
    assert traceparent is not None
    return traceparent.split("-")[2]


def assert_consumer_lines_continue_the_trace(
    records: list[dict[str, Any]], answer: OutboxMessage
) -> None:
    handled = [r for r in records if r.get("event") == "traced_handled"]
    library = [r for r in records if r.get("logger") == "test.consumer.library"]
    assert len(handled) == 1, records
    assert len(library) == 1, records
    for record in (*handled, *library):
        assert record["trace_id"] == TRACE_ID, record
        # The consumer's span: the one its outbox row names as parent.
        assert record["span_id"] == span_of(answer.trace_parent), record
        assert "request_id" not in record
        assert "user_id" not in record
    assert library[0]["level"] == "warning"


async def test_an_event_written_in_a_request_carries_its_trace_to_the_consumer(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process transport, on both engines: request -> outbox -> relay -> consumer -> outbox."""
    app = build_probe_app(settings.model_copy(update={"log_level": "INFO"}))
    app.include_router(asking)
    user_id = uuid.uuid4()
    async with serve(app) as client:
        platform = app.state.platform
        uows = platform.uow_factory("lodging")
        platform.register_consumer(Consumer("test.traced", uows).on(TracedAsked, answering()))
        response = await client.post(
            "/probe/traced/ask",
            headers=bearer(app, user_id=user_id)
            | {"x-request-id": "traced-1", "traceparent": TRACEPARENT},
        )
        assert response.status_code == 201, response.text
        rows = await outbox_rows(uows.sessions, response.json()["aggregate"], 2)

    records = json_lines(capsys.readouterr().out)
    (request_line,) = [
        r for r in records if r.get("request_id") == "traced-1" and r["event"] == "request"
    ]
    assert (request_line["trace_id"], request_line["user_id"]) == (TRACE_ID, str(user_id))
    asked, answered = rows[TracedAsked.TYPE], rows[TracedAnswered.TYPE]
    # The request's row names the request's own span as parent (not its caller's).
    assert asked.trace_parent == f"00-{TRACE_ID}-{request_line['span_id']}-01"
    assert trace_id_of(answered.trace_parent) == TRACE_ID
    assert span_of(answered.trace_parent) not in (request_line["span_id"], CALLER_SPAN)
    assert_consumer_lines_continue_the_trace(records, answered)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
async def test_over_kafka_the_trace_travels_in_a_record_header(
    database_url: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        database_url, **kafka_overrides(kafka_bootstrap, "trace", partitions=1)
    )
    configure_logging("INFO", json=True)
    databases = Databases(settings)
    sessions = databases.sessions_for("platform")
    uows = UnitOfWorkFactory(sessions)
    transport = KafkaTransport(settings)
    await transport.start()
    stop = asyncio.Event()
    consumer = Consumer("test.traced.kafka", uows).on(TracedAsked, answering())
    # Started outside any trace: what it continues can only have come with the record.
    loop = asyncio.ensure_future(transport.consumer_loop(consumer)(stop))
    try:
        aggregate = uuid.uuid4().hex
        with trace_bound(TRACEPARENT):  # as a request (or another consumer) writing it would
            async with uows() as uow:
                uow.emit(TracedAsked(aggregate=aggregate))
                await uow.commit()
        assert await OutboxRelay(sessions, transport).relay_once() == 1
        rows = await outbox_rows(sessions, aggregate, 2)
        assert not loop.done()
    finally:
        stop.set()
        await loop
        await transport.stop()
        await databases.dispose()

    asked, answered = rows[TracedAsked.TYPE], rows[TracedAnswered.TYPE]
    assert trace_id_of(asked.trace_parent) == TRACE_ID
    assert trace_id_of(answered.trace_parent) == TRACE_ID
    assert span_of(answered.trace_parent) != span_of(asked.trace_parent)
    assert_consumer_lines_continue_the_trace(json_lines(capsys.readouterr().out), answered)


@one_backend
async def test_a_batch_handler_continues_a_trace_only_if_its_events_share_it(
    settings: Settings,
) -> None:
    databases = Databases(settings)
    seen: list[str | None] = []

    async def record(uow: UnitOfWork, bodies: Sequence[TracedAsked]) -> None:
        seen.append(structlog.contextvars.get_contextvars().get("trace_id"))

    consumer = Consumer("test.traced.batch", UnitOfWorkFactory(databases.sessions_for("platform")))
    consumer.on_batch(TracedAsked, record)

    def asked(traceparent: str) -> Event:
        event = Event.of(TracedAsked(aggregate=uuid.uuid4().hex))
        return dataclasses.replace(event, trace_parent=traceparent)

    other = "00-1234567890abcdef1234567890abcdef-1234567890abcdef-01"
    try:
        await consumer.handle_batch([asked(TRACEPARENT), asked(f"00-{TRACE_ID}-{'1' * 16}-01")])
        await consumer.handle_batch([asked(TRACEPARENT), asked(other)])
    finally:
        await databases.dispose()
    shared, mixed = seen
    assert shared == TRACE_ID
    assert mixed is not None
    assert mixed not in (TRACE_ID, trace_id_of(other))

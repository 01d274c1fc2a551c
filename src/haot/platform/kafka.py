"""Kafka transport (production): the relay publishes outbox rows, consumers read them in batches.

Delivery is at-least-once on purpose and the database makes effects exactly-once:

- ``publish`` sends a whole batch (key = aggregate id, so one aggregate's events share a partition
  and keep their order), then waits until the broker acknowledged every record (``acks="all"``).
  Only then may the relay mark the rows published; a crash before that re-publishes them.
- ``consumer_loop`` commits a partition's offsets only after ``handle_batch`` applied its records
  (in the consumer's own transaction, with the inbox). A crash before the commit redelivers, and
  the inbox skips what was applied. If ``handle_batch`` fails, nothing is committed: the partition
  is rewound to the batch's first record and retried after a backoff.

An event's trace context travels as the record's ``traceparent`` header (W3C), beside the
envelope rather than in it: it says who wrote the event, not what happened.

Neither the idempotent producer nor transactions are used: the broker this is tested against
(tansu) breaks both, and the inbox already removes duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalStateError, KafkaError

from haot.platform.events import Event, decode_event, encode_event, topic_for
from haot.platform.metrics import CONSUMER_LAG, EVENTS_POISON
from haot.platform.settings import CONTEXTS, Settings
from haot.platform.transport import BatchHandler

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_POLL_TIMEOUT_MS = 500
_RETRY_BACKOFF_FIRST = 0.2
_RETRY_BACKOFF_MAX = 5.0
_PING_TIMEOUT_SECONDS = 2.0


class KafkaTransport:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bootstrap = settings.kafka_bootstrap_servers
        self._prefix = settings.kafka_topic_prefix
        self._producer: Any = None
        self._known_topics: set[str] = set()
        self._topics_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.ensure_topics(topic_for(context, self._prefix) for context in CONTEXTS)
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id="haot-relay",
                acks="all",
                enable_idempotence=False,
            )
            await producer.start()
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create the topics that do not exist yet (an existing topic is left as it is)."""
        missing = sorted(set(topics) - self._known_topics)
        if not missing:
            return
        async with self._topics_lock:
            missing = [t for t in missing if t not in self._known_topics]
            if not missing:
                return
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="haot-admin")
            await admin.start()
            try:
                response = await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            self._settings.kafka_topic_partitions,
                            self._settings.kafka_topic_replication_factor,
                        )
                        for name in missing
                    ]
                )
            finally:
                await admin.close()
            for error in response.topic_errors:
                name, code = error[0], error[1]
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise KafkaError(f"creating topic {name} failed: error {code} ({error[2]})")
            self._known_topics.update(missing)
            log.debug("kafka_topics_ensured", topics=missing)

    # -- producing ----------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> None:
        """Send every event, then wait until the broker acknowledged all of them."""
        if not events:
            return
        if self._producer is None:
            raise RuntimeError("KafkaTransport.publish before start()")
        topics = {e.context: topic_for(e.context, self._prefix) for e in events}
        await self.ensure_topics(topics.values())
        deliveries = [
            await self._producer.send(
                topics[event.context],
                value=encode_event(event),
                key=event.aggregate_id.encode(),
                headers=_headers(event),
            )
            for event in events
        ]
        # Wait for every acknowledgement (even after a failure, so no delivery is left unobserved).
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        if failures := [r for r in results if isinstance(r, BaseException)]:
            raise failures[0]

    async def ping(self) -> bool:
        """Whether the broker answers a metadata request within a short timeout."""
        try:
            async with asyncio.timeout(_PING_TIMEOUT_SECONDS):
                if self._producer is not None:
                    await self._producer.client.fetch_all_metadata()
                    return True
                client = AIOKafkaClient(
                    bootstrap_servers=self._bootstrap,
                    client_id="haot-ping",
                    request_timeout_ms=int(_PING_TIMEOUT_SECONDS * 1000),
                )
                try:
                    await client.bootstrap()
                finally:
                    await client.close()
                return True
        except (TimeoutError, KafkaError, OSError):
            return False

    # -- consuming ----------------------------------------------------------------------------

    def consumer_loop(self, consumer: BatchHandler) -> Callable[[asyncio.Event], Awaitable[None]]:
        """A background task that feeds ``consumer`` from its contexts' topics until ``stop``."""

        async def run(stop: asyncio.Event) -> None:
            topics = sorted(topic_for(source, self._prefix) for source in consumer.sources)
            if not topics:
                return
            await self.ensure_topics(topics)
            kafka = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=self._bootstrap,
                client_id=f"haot-{consumer.name}",
                group_id=self._settings.kafka_consumer_group_prefix + consumer.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._settings.consumer_batch_size,
                session_timeout_ms=self._settings.kafka_session_timeout_ms,
                heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
            )
            await kafka.start()
            loop = _ConsumerLoop(kafka, consumer, stop)
            try:
                await loop.run(self._settings.consumer_batch_size)
            finally:
                await kafka.stop()

        return run


_TRACEPARENT_HEADER = "traceparent"


def _headers(event: Event) -> list[tuple[str, bytes]] | None:
    if event.trace_parent is None:
        return None
    return [(_TRACEPARENT_HEADER, event.trace_parent.encode("latin-1"))]


def _trace_parent(record: Any) -> str | None:
    for key, value in record.headers or ():
        if key == _TRACEPARENT_HEADER and value:
            return bytes(value).decode("latin-1")
    return None


class _ConsumerLoop:
    def __init__(self, kafka: Any, consumer: BatchHandler, stop: asyncio.Event) -> None:
        self._kafka = kafka
        self._consumer = consumer
        self._stop = stop
        self._failures: dict[TopicPartition, int] = {}

    async def run(self, batch_size: int) -> None:
        while not self._stop.is_set():
            batches: dict[TopicPartition, list[Any]] = await self._kafka.getmany(
                timeout_ms=_POLL_TIMEOUT_MS, max_records=batch_size
            )
            for partition, records in batches.items():
                if self._stop.is_set():
                    # Not applied, not committed: the next owner of the partition reads them.
                    break
                if records:
                    await self._handle(partition, records)

    async def _handle(self, partition: TopicPartition, records: list[Any]) -> None:
        events = self._decode(partition, records)
        try:
            await self._consumer.handle_batch(events)
        except Exception:
            failures = self._failures.get(partition, 0) + 1
            self._failures[partition] = failures
            backoff = min(_RETRY_BACKOFF_FIRST * 2 ** (failures - 1), _RETRY_BACKOFF_MAX)
            log.exception(
                "consumer_batch_failed",
                consumer=self._consumer.name,
                topic=partition.topic,
                partition=partition.partition,
                offset=records[0].offset,
                size=len(records),
                attempt=failures,
                retry_in=backoff,
            )
            # Nothing of this batch is committed: read it again from its first record.
            with contextlib.suppress(IllegalStateError):  # revoked meanwhile: the next owner reads
                self._kafka.seek(partition, records[0].offset)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=backoff)
            return
        self._failures.pop(partition, None)
        next_offset = records[-1].offset + 1
        try:
            await self._kafka.commit({partition: next_offset})
        except KafkaError:
            # Typically a rebalance took the partition away; the applied records come again to
            # the next owner, whose inbox skips them.
            log.warning(
                "consumer_commit_failed",
                consumer=self._consumer.name,
                topic=partition.topic,
                partition=partition.partition,
                offset=next_offset,
                exc_info=True,
            )
        self._record_lag(partition, next_offset)

    def _decode(self, partition: TopicPartition, records: list[Any]) -> list[Event]:
        events: list[Event] = []
        for record in records:
            try:
                events.append(decode_event(record.value, trace_parent=_trace_parent(record)))
            except Exception:
                # A record that can never be decoded would block its partition forever; it has
                # no event id to park it by, so it is counted and logged whole.
                EVENTS_POISON.labels(self._consumer.name, "undecodable").inc()
                log.exception(
                    "consumer_record_undecodable",
                    consumer=self._consumer.name,
                    topic=partition.topic,
                    partition=partition.partition,
                    offset=record.offset,
                    value=bytes(record.value or b"")[:2000].decode("utf-8", "replace"),
                )
        return events

    def _record_lag(self, partition: TopicPartition, position: int) -> None:
        # The high watermark comes with every fetch response, so this costs no request.
        highwater = self._kafka.highwater(partition)
        if highwater is not None:
            CONSUMER_LAG.labels(self._consumer.name, partition.topic, str(partition.partition)).set(
                max(highwater - position, 0)
            )

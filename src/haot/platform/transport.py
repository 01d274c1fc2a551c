"""How events travel between the outbox relay and consumers.

Two implementations share the ``Transport`` protocol: ``InProcessTransport`` (embedded default: the
relay hands each batch straight to the registered consumers) and ``KafkaTransport`` in
``haot.platform.kafka`` (production). ``publish`` returns only once every event is durably accepted
(for in-process: applied by every consumer), so the relay may then mark the rows published.
Each event keeps the trace context it was written in (``Event.trace_parent``): the in-process
transport hands the envelopes over as they are, Kafka carries it as a record header.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from haot.platform.events import Event


class Transport(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None: ...


class BatchHandler(Protocol):
    """A consumer as the transports see it: a name, the contexts whose events it reads, and a
    batch entry point (which must be idempotent: transports deliver at least once)."""

    name: str
    sources: frozenset[str]

    async def handle_batch(self, events: Sequence[Event]) -> None: ...


class InProcessTransport:
    def __init__(self) -> None:
        self._consumers: list[BatchHandler] = []

    def subscribe(self, consumer: BatchHandler) -> None:
        self._consumers.append(consumer)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, events: Sequence[Event]) -> None:
        for consumer in self._consumers:
            wanted = [e for e in events if e.context in consumer.sources]
            if wanted:
                await consumer.handle_batch(wanted)

"""Kill the relay and the consumer mid-batch, in real processes, and find every event applied once.

The relay and the consumer run as ``python -m tests.support.event_worker`` against PostgreSQL and
tansu. Each dies at least once at its worst moment (an injected ``os._exit`` between the broker
acknowledging and the rows being marked published, and between the effects committing and the
Kafka offsets committing) and each is SIGKILLed once at a moment the test does not control.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.events import Event
from haot.platform.inbox import InboxEntry
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from haot.platform.uow import UnitOfWorkFactory
from tests.conftest import make_settings
from tests.support.effects import sessions_with
from tests.support.event_worker import (
    CONSUMER_NAME,
    CRASH_EXIT_CODE,
    effects,
    thing,
)
from tests.support.tansu import kafka_overrides

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.parametrize("backend", ["postgres"]),
]

ROOT = Path(__file__).resolve().parents[2]
AGGREGATES = 20
PER_AGGREGATE = 25
N = AGGREGATES * PER_AGGREGATE
BATCH = 50
EXIT_TIMEOUT = 30.0
FINISH_TIMEOUT = 45.0


@pytest.fixture
def crash_settings(database_url: str, kafka_bootstrap: str) -> Settings:
    return make_settings(
        database_url,
        **kafka_overrides(kafka_bootstrap, "crash", partitions=4),
        outbox_batch_size=BATCH,
        outbox_poll_interval_seconds=0.05,
        consumer_batch_size=BATCH,
    )


@pytest.fixture
async def sessions(crash_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions_with(crash_settings, effects) as sessions:
        yield sessions


class Workers:
    """The worker processes of one test; every one of them is gone when the test ends."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self._directory = directory
        self.journal = directory / "journal.jsonl"
        self._processes: list[tuple[str, str, subprocess.Popen[bytes]]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOT_", "EVENT_WORKER_"))}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "EVENT_WORKER_JOURNAL": str(self.journal),
                "HAOT_ENV": "test",
                "HAOT_LOG_LEVEL": "WARNING",
                "HAOT_JWT_SECRET": settings.jwt_secret,
                "HAOT_DATABASE_URL": settings.database_url,
                "HAOT_DATABASE_POOL_SIZE": "2",
                "HAOT_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "HAOT_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
                "HAOT_KAFKA_CONSUMER_GROUP_PREFIX": settings.kafka_consumer_group_prefix,
                "HAOT_KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
                "HAOT_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
                "HAOT_KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
                "HAOT_OUTBOX_BATCH_SIZE": str(settings.outbox_batch_size),
                "HAOT_OUTBOX_POLL_INTERVAL_SECONDS": str(settings.outbox_poll_interval_seconds),
                "HAOT_CONSUMER_BATCH_SIZE": str(settings.consumer_batch_size),
            }
        )
        self._env = env

    def start(self, role: str, *, crash_after: int = 0, delay: float = 0.0) -> Any:
        name = f"{role}{sum(1 for r, _, _ in self._processes if r == role) + 1}"
        env = {
            **self._env,
            "EVENT_WORKER_CRASH_AFTER": str(crash_after),
            "EVENT_WORKER_DELAY": str(delay),
        }
        with (self._directory / f"{name}.log").open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.event_worker", role],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._processes.append((role, name, process))
        return process

    async def wait_exit(
        self, process: subprocess.Popen[bytes], timeout: float = EXIT_TIMEOUT
    ) -> int:
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"pid {process.pid} still running after {timeout:.0f}s")
            await asyncio.sleep(0.05)
        return process.returncode

    async def stop(self, process: subprocess.Popen[bytes]) -> int:
        process.send_signal(signal.SIGTERM)
        return await self.wait_exit(process, timeout=15)

    def kill_all(self) -> None:
        for _, _, process in self._processes:
            if process.poll() is None:
                process.kill()
        for _, _, process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for _, name, process in self._processes:
            text = (self._directory / f"{name}.log").read_text(errors="replace")
            parts.append(
                f"--- {name} (pid {process.pid}, rc {process.returncode}) ---\n{text[-3000:]}"
            )
        return "\n".join(parts)

    def entries(self, role: str) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        lines = self.journal.read_bytes().splitlines()
        return [entry for entry in map(orjson.loads, lines) if entry["role"] == role]


async def scalar(sessions: async_sessionmaker[AsyncSession], statement: Any) -> int:
    async with sessions() as session:
        return int((await session.execute(statement)).scalar_one())


def effect_count() -> Any:
    return select(func.count()).select_from(effects).where(effects.c.consumer == CONSUMER_NAME)


def published_count() -> Any:
    return select(func.count()).where(OutboxMessage.published_at.is_not(None))


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, workers: Workers, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s: {what}\n{workers.logs()}")
        await asyncio.sleep(0.02)


async def write_events(uows: UnitOfWorkFactory) -> list[Event]:
    events: list[Event] = []
    for seq in range(PER_AGGREGATE):
        for agg in range(AGGREGATES):
            events.append(thing(f"agg-{agg}", seq))
    for start in range(0, len(events), 10):
        async with uows() as uow:
            for event in events[start : start + 10]:
                uow.emit(event)
            await uow.commit()
    return events


async def test_killed_relay_and_consumer_still_apply_every_event_exactly_once(
    crash_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    uows = UnitOfWorkFactory(sessions, topic_prefix=crash_settings.kafka_topic_prefix)
    events = await write_events(uows)
    workers = Workers(crash_settings, tmp_path)

    async def effects_reach(count: int) -> bool:
        return await scalar(sessions, effect_count()) >= count

    async def published_reach(count: int) -> bool:
        return await scalar(sessions, published_count()) >= count

    try:
        # 1. Injected crashes at the worst moments. The relay dies after the broker acknowledged
        #    its third batch, before marking it; the consumer after applying its third batch,
        #    before committing the offsets.
        relay = workers.start("relay", crash_after=3)
        consumer = workers.start("consumer", crash_after=3)
        assert await workers.wait_exit(relay) == CRASH_EXIT_CODE, workers.logs()
        assert await scalar(sessions, published_count()) == 2 * BATCH
        assert sum(e.get("published", 0) for e in workers.entries("relay")) == 3 * BATCH
        assert await workers.wait_exit(consumer) == CRASH_EXIT_CODE, workers.logs()
        applied_before_crash = await scalar(sessions, effect_count())
        assert applied_before_crash > 0

        # 2. SIGKILL at moments the test does not control: a slow relay (it pauses between
        #    publishing and marking) and a slow consumer (it pauses inside its transaction).
        relay = workers.start("relay", delay=0.3)
        consumer = workers.start("consumer", delay=0.005)
        await until(lambda: published_reach(4 * BATCH), "relay 2 to publish", workers, 30)
        relay.kill()
        assert await workers.wait_exit(relay) == -signal.SIGKILL
        relay = workers.start("relay")
        await until(
            lambda: effects_reach(applied_before_crash + 100), "consumer 2 progress", workers, 30
        )
        consumer.kill()
        assert await workers.wait_exit(consumer) == -signal.SIGKILL
        assert await scalar(sessions, effect_count()) < N, "consumer 2 was killed too late"

        # 3. Survivors finish the job.
        consumer = workers.start("consumer")
        await until(lambda: effects_reach(N), "every event to be applied", workers, FINISH_TIMEOUT)
        await until(lambda: published_reach(N), "every row to be marked", workers, 10)

        # Let redeliveries still in flight arrive (they must be skipped), then stop gracefully.
        quiet_since, seen = time.monotonic(), len(workers.entries("consumer"))
        while time.monotonic() - quiet_since < 1.0:
            await asyncio.sleep(0.1)
            if (now := len(workers.entries("consumer"))) != seen:
                quiet_since, seen = time.monotonic(), now
        assert await workers.stop(consumer) == 0, workers.logs()
        assert await workers.stop(relay) == 0, workers.logs()
    finally:
        workers.kill_all()

    # Every event applied exactly once, each aggregate in order.
    async with sessions() as session:
        rows = (
            await session.execute(
                select(effects.c.event_id, effects.c.aggregate_id, effects.c.seq)
                .where(effects.c.consumer == CONSUMER_NAME)
                .order_by(effects.c.id)
            )
        ).all()
        inbox = await session.scalar(
            select(func.count()).select_from(InboxEntry).where(InboxEntry.consumer == CONSUMER_NAME)
        )
    assert len(rows) == N
    assert Counter(row.event_id for row in rows).most_common(1)[0][1] == 1
    assert {row.event_id for row in rows} == {e.id for e in events}
    assert inbox == N
    per_aggregate: dict[str, list[int]] = {}
    for row in rows:
        per_aggregate.setdefault(row.aggregate_id, []).append(row.seq)
    assert all(seqs == list(range(PER_AGGREGATE)) for seqs in per_aggregate.values())

    # And the crashes did cause redelivery, which the inbox absorbed.
    published = Counter(i for entry in workers.entries("relay") for i in entry.get("ids", []))
    assert set(published) == {str(e.id) for e in events}
    assert sum(published.values()) > N, "no batch was published twice"
    consumed = workers.entries("consumer")
    delivered = sum(entry.get("delivered", 0) for entry in consumed)
    skipped = sum(entry.get("duplicates", 0) for entry in consumed)
    assert delivered > N
    assert skipped > 0, "no redelivery reached the inbox"

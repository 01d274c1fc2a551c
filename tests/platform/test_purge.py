"""Purge jobs remove exactly what nothing reads again, in batches, with a dry run and a metric;
on both database engines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.clock import utcnow
from haot.platform.db import create_engine
from haot.platform.idempotency import IdempotencyRecord
from haot.platform.inbox import InboxEntry
from haot.platform.outbox import OutboxMessage
from haot.platform.purge import Purges
from haot.platform.settings import Settings

NOW = utcnow()


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def purges(sessions: async_sessionmaker[AsyncSession]) -> Purges:
    # A batch of 3, so the ten old rows go in several batches.
    return Purges(
        [sessions],
        sessions,
        outbox_retention=timedelta(hours=24),
        inbox_retention=timedelta(days=30),
        batch_size=3,
    )


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def purged_metric(table: str) -> float:
    return REGISTRY.get_sample_value("haot_purged_rows_total", {"table": table}) or 0.0


def outbox_row(published_hours_ago: float | None) -> OutboxMessage:
    return OutboxMessage(
        event_id=uuid.uuid4(),
        topic="haot.test",
        key="k",
        type="test.happened",
        payload={},
        occurred_at=NOW - timedelta(days=3),
        published_at=None
        if published_hours_ago is None
        else NOW - timedelta(hours=published_hours_ago),
    )


async def test_published_outbox_rows_past_retention_are_purged(
    sessions: async_sessionmaker[AsyncSession], purges: Purges
) -> None:
    async with sessions() as session, session.begin():
        session.add_all(outbox_row(48) for _ in range(10))  # published two days ago: purged
        session.add_all(outbox_row(1) for _ in range(2))  # published an hour ago: kept
        session.add_all(outbox_row(None) for _ in range(2))  # never published: always kept
    before = purged_metric("outbox")

    assert await purges.outbox(NOW, True) == {"would_purge": 10}
    assert await count(sessions, OutboxMessage) == 14
    assert await purges.outbox(NOW, False) == {"purged": 10}
    assert await count(sessions, OutboxMessage) == 4
    assert purged_metric("outbox") - before == 10
    async with sessions() as session:
        unpublished = await session.execute(
            select(func.count()).where(OutboxMessage.published_at.is_(None))
        )
        assert unpublished.scalar_one() == 2
    # A day later the recent ones are past retention too; the unpublished never are.
    assert await purges.outbox(NOW + timedelta(days=1), False) == {"purged": 2}
    assert await count(sessions, OutboxMessage) == 2


async def test_inbox_rows_past_retention_are_purged(
    sessions: async_sessionmaker[AsyncSession], purges: Purges
) -> None:
    async with sessions() as session, session.begin():
        for days_ago, n in ((31, 10), (5, 3)):
            session.add_all(
                InboxEntry(
                    consumer=f"consumer-{i % 2}",
                    event_id=uuid.uuid4(),
                    processed_at=NOW - timedelta(days=days_ago),
                )
                for i in range(n)
            )
    assert await purges.inbox(NOW, True) == {"would_purge": 10}
    assert await purges.inbox(NOW, False) == {"purged": 10}
    assert await count(sessions, InboxEntry) == 3


async def test_expired_idempotency_records_are_purged(
    sessions: async_sessionmaker[AsyncSession], purges: Purges
) -> None:
    async with sessions() as session, session.begin():
        for expires_in, n in ((-1, 7), (1, 2)):
            session.add_all(
                IdempotencyRecord(
                    scope=f"user:{uuid.uuid4()}",
                    key=f"key-{i}",
                    fingerprint="f",
                    locked_until=NOW,
                    created_at=NOW - timedelta(days=1),
                    expires_at=NOW + timedelta(hours=expires_in),
                )
                for i in range(n)
            )
    assert await purges.idempotency(NOW, False) == {"purged": 7}
    assert await count(sessions, IdempotencyRecord) == 2

"""Purge jobs: the platform's bookkeeping tables shed what nothing will read again.

- ``purge-outbox``: published outbox rows older than ``HAOT_OUTBOX_RETENTION_HOURS`` (kept a
  while for operators; the transport has them).
- ``purge-inbox``: inbox rows older than ``HAOT_INBOX_RETENTION_DAYS``. An inbox row is what makes
  a redelivered event a no-op, so the retention must outlast any redelivery: the broker's own
  retention, and a relay that re-publishes after a crash.
- ``purge-idempotency``: Idempotency-Key records past their expiry (they answer nothing after).

Each runs on every database the process serves, deletes in batches (short transactions, no long
locks on a busy table), counts what it removed (``haot_purged_rows_total{table}``) and has a dry
run that counts what it would remove. ``as_of`` moves the clock, as for every job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import ColumnElement, Table, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.idempotency import IdempotencyRecord
from haot.platform.inbox import InboxEntry
from haot.platform.outbox import OutboxMessage

PURGED = Counter("haot_purged_rows_total", "Rows removed by the purge jobs", ["table"])


class Purges:
    def __init__(
        self,
        databases: Sequence[async_sessionmaker[AsyncSession]],
        platform_database: async_sessionmaker[AsyncSession],
        *,
        outbox_retention: timedelta,
        inbox_retention: timedelta,
        batch_size: int = 5_000,
    ) -> None:
        self._databases = databases
        self._platform_database = platform_database
        self._outbox_retention = outbox_retention
        self._inbox_retention = inbox_retention
        self._batch_size = batch_size

    async def outbox(self, as_of: datetime, dry_run: bool) -> dict[str, Any]:
        table = _table(OutboxMessage)
        older = table.c.published_at.is_not(None) & (
            table.c.published_at < as_of - self._outbox_retention
        )
        return await self._purge("outbox", self._databases, table, older, dry_run)

    async def inbox(self, as_of: datetime, dry_run: bool) -> dict[str, Any]:
        table = _table(InboxEntry)
        older = table.c.processed_at < as_of - self._inbox_retention
        return await self._purge("inbox", self._databases, table, older, dry_run)

    async def idempotency(self, as_of: datetime, dry_run: bool) -> dict[str, Any]:
        table = _table(IdempotencyRecord)
        expired = table.c.expires_at < as_of
        return await self._purge(
            "idempotency_keys", [self._platform_database], table, expired, dry_run
        )

    async def _purge(
        self,
        name: str,
        databases: Sequence[async_sessionmaker[AsyncSession]],
        table: Table,
        condition: ColumnElement[bool],
        dry_run: bool,
    ) -> dict[str, Any]:
        key = tuple_(*table.primary_key.columns)
        total = 0
        for sessions in databases:
            if dry_run:
                async with sessions() as session:
                    count = select(func.count()).select_from(table).where(condition)
                    total += int((await session.execute(count)).scalar_one())
                continue
            while True:
                batch = select(*table.primary_key.columns).where(condition).limit(self._batch_size)
                async with sessions() as session, session.begin():
                    result = await session.execute(delete(table).where(key.in_(batch)))
                removed = int(getattr(result, "rowcount", 0) or 0)
                total += removed
                PURGED.labels(name).inc(removed)
                if removed < self._batch_size:
                    break
        return {"would_purge" if dry_run else "purged": total}


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table

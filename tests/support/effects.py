"""The test effect tables of the event tests: created in the platform database, emptied, and the
session factory that the outbox, the inbox and the handlers under test share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haot.platform.db import Databases
from haot.platform.settings import Settings


@asynccontextmanager
async def sessions_with(
    settings: Settings, effects: Table
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    databases = Databases(settings)
    async with databases.engine_for("platform").begin() as conn:
        await conn.run_sync(effects.metadata.create_all)
        await conn.execute(delete(effects))
    try:
        yield databases.sessions_for("platform")
    finally:
        await databases.dispose()

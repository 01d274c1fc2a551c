"""The PostgreSQL pool is fixed: under load no connection is opened beyond its size, and none is
closed and reopened (each new connection is a new server process: milliseconds of its CPU)."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, text

from haot.platform.db import create_engine


async def test_steady_load_opens_each_pooled_connection_once(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=3)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda *_: opened.append(1))
    busiest = 0
    busy = 0

    async def request() -> None:
        nonlocal busy, busiest
        async with engine.connect() as connection:
            busy += 1
            busiest = max(busiest, busy)
            await connection.execute(text("SELECT pg_sleep(0.002)"))
            busy -= 1

    try:
        for _ in range(10):  # bursts of 30 requests, with lulls between them
            await asyncio.gather(*(request() for _ in range(30)))
            await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    assert busiest == 3
    assert len(opened) == 3

"""The raw ceilings of ``make bench``: what the same server software (uvicorn with uvloop and
httptools, the workers haot runs) serves when the request does only the irreducible work.

- ``GET /json``: a bare JSON answer (the ceiling of every route).
- ``POST /hold``: one booking's irreducible database work. The body is a stay
  (``room_type_id``, ``check_in``, ``check_out``); one transaction takes a room on every night with
  a guarded ``UPDATE ... RETURNING`` on a scratch copy of the catalogue's nights, records the hold,
  and commits, or rolls back and answers 409 when a night is full. asyncpg, no ORM.
- ``POST /claim/{event}``: one claim's irreducible Redis work: the claim script itself by
  EVALSHA, for a random user, answered 202 or 409.

Run: ``BENCH_CEILING_DSN=... BENCH_CEILING_REDIS=... uvicorn bench.ceilings:app --workers 2``.
The scratch tables (``bench_raw_nights``, ``bench_raw_holds``) are made by ``prepare``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from haot.coupon.drops import _CLAIM

_TAKE = """
UPDATE bench_raw_nights SET held = held + 1
WHERE room_type_id = $1 AND date >= $2 AND date < $3
  AND NOT closed AND held + sold < total AND min_stay <= $4 AND max_stay >= $4
RETURNING date, price
"""
_RECORD = """
INSERT INTO bench_raw_holds (reservation_id, room_type_id, check_in, check_out, amount)
VALUES ($1, $2, $3, $4, $5)
"""


async def prepare(conn: asyncpg.Connection, room_type_ids: list[uuid.UUID]) -> None:
    """Scratch copies of the nights the hold workload touches, with the real table's shape,
    constraints and indexes, so the raw hold does the same work on the same data."""
    await conn.execute("DROP TABLE IF EXISTS bench_raw_nights, bench_raw_holds")
    await conn.execute("CREATE TABLE bench_raw_nights (LIKE lodging_nights INCLUDING ALL)")
    await conn.execute(
        "INSERT INTO bench_raw_nights SELECT * FROM lodging_nights"
        " WHERE room_type_id = ANY($1::uuid[])",
        room_type_ids,
    )
    await conn.execute(
        "CREATE TABLE bench_raw_holds (reservation_id uuid PRIMARY KEY, room_type_id uuid NOT"
        " NULL, check_in date NOT NULL, check_out date NOT NULL, rooms int NOT NULL DEFAULT 1,"
        " amount int NOT NULL)"
    )
    await conn.execute("ANALYZE bench_raw_nights")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_CEILING_DSN"], min_size=4, max_size=20
    )
    app.state.redis = aioredis.Redis.from_url(os.environ["BENCH_CEILING_REDIS"], max_connections=64)
    app.state.claim = await app.state.redis.script_load(_CLAIM)
    try:
        yield
    finally:
        await app.state.pool.close()
        await app.state.redis.aclose()


async def bare_json(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def hold(request: Request) -> Response:
    body: dict[str, Any] = json.loads(await request.body())
    room_type_id = uuid.UUID(body["room_type_id"])
    check_in, check_out = (
        date.fromisoformat(body["check_in"]),
        date.fromisoformat(body["check_out"]),
    )
    nights = (check_out - check_in).days
    reservation_id = uuid.uuid4()
    async with request.app.state.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            taken = await conn.fetch(_TAKE, room_type_id, check_in, check_out, nights)
            if len(taken) != nights:
                await transaction.rollback()
                return JSONResponse({"code": "room_unavailable"}, status_code=409)
            amount = sum(row["price"] for row in taken)
            await conn.execute(_RECORD, reservation_id, room_type_id, check_in, check_out, amount)
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
    return JSONResponse({"id": str(reservation_id), "amount": amount}, status_code=201)


async def claim(request: Request) -> Response:
    tag = f"cev:{{{request.path_params['event']}}}"
    user = uuid.uuid4().hex
    outcome, _ = await request.app.state.redis.evalsha(
        request.app.state.claim,
        4,
        tag,
        f"{tag}:users",
        f"{tag}:claims",
        f"{tag}:rl:{user}",
        user,
        uuid.uuid4().hex,
        5,
        1000,
    )
    accepted = outcome == b"accepted"
    return JSONResponse({"outcome": outcome.decode()}, status_code=202 if accepted else 409)


app = Starlette(
    routes=[
        Route("/json", bare_json),
        Route("/hold", hold, methods=["POST"]),
        Route("/claim/{event}", claim, methods=["POST"]),
    ],
    lifespan=lifespan,
)

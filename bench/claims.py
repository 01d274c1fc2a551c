"""Coupon claims under ``make bench``: a drop seeded through the admin API, its raw ceiling's
twin in Redis, and the check that the drop issued exactly its quantity, once per user."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import redis

from bench.harness import Backends

CLAIM_ROUTE = "/api/v1/coupon-events/{event_id}/claims"


def raw_drop(redis_url: str, quantity: int) -> str:
    """An open drop of ``quantity`` in Redis alone, for the raw claim ceiling: the same hash the
    claim script reads, so the ceiling runs the very script haot runs on the same state."""
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset(
            f"cev:{{{name}}}",
            mapping={
                "state": "open",
                "starts": now - 60_000,
                "ends": now + 3_600_000,
                "remaining": quantity,
            },
        )
    finally:
        client.close()
    return name


def seed(base: str, admin: str, quantity: int | None) -> str:
    headers = {"Authorization": f"Bearer {admin}"}
    now = datetime.now(UTC)
    coupon = httpx.post(
        f"{base}/api/v1/admin/coupons",
        headers=headers,
        json={
            "name": "Bench drop",
            "discount_type": "PERCENT",
            "discount_value": 10,
            "max_discount": 30_000,
            "min_order_amount": 0,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_to": (now + timedelta(days=30)).isoformat(),
        },
        timeout=10,
    )
    coupon.raise_for_status()
    event = httpx.post(
        f"{base}/api/v1/admin/coupon-events",
        headers=headers,
        json={
            "coupon_id": coupon.json()["id"],
            "starts_at": (now - timedelta(seconds=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "quantity": quantity,
        },
        timeout=10,
    )
    event.raise_for_status()
    return str(event.json()["id"])


async def check(
    backends: Backends, event_id: str, quantity: int | None, accepted: int
) -> dict[str, Any]:
    """After the load: wait for the stream to drain, then compare Redis and the database."""
    client = redis.Redis.from_url(backends.redis_url, decode_responses=True)
    tag = f"cev:{{{event_id}}}"
    started = time.monotonic()
    for _ in range(1200):  # at most 120 s
        if not client.xlen(f"{tag}:claims"):
            break
        await asyncio.sleep(0.1)
    drained_after = round(time.monotonic() - started, 1)
    conn = await asyncpg.connect(backends.database_dsn, timeout=5)
    try:
        eid = uuid.UUID(event_id)
        for _ in range(100):  # the last batch may still be committing
            rows = await conn.fetchval(
                "SELECT count(*) FROM coupon_user_coupons WHERE event_id = $1", eid
            )
            if rows >= accepted:
                break
            await asyncio.sleep(0.1)
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT user_id FROM coupon_user_coupons WHERE event_id = $1 "
            "GROUP BY user_id HAVING count(*) > 1) d",
            eid,
        )
        issued, closed = await conn.fetchrow(
            "SELECT issued, closed_reason FROM coupon_events WHERE id = $1", eid
        )
        claims = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM coupon_claims WHERE event_id = $1 GROUP BY status",
                eid,
            )
        )
    finally:
        await conn.close()
    remaining = client.hget(tag, "remaining")
    users = client.scard(f"{tag}:users")
    backlog = client.xlen(f"{tag}:claims")
    client.close()
    result: dict[str, Any] = {
        "quantity": quantity,
        "accepted_202": accepted,
        "issued_rows": rows,
        "event_issued": issued,
        "closed_reason": closed,
        "duplicate_users": duplicates,
        "claim_rows": claims,
        "redis_remaining": int(remaining) if remaining is not None else None,
        "redis_users": users,
        "redis_backlog": backlog,
        "stream_drained_after_s": drained_after,
    }
    ok = (
        duplicates == 0
        and rows == issued == accepted
        and claims == ({"ISSUED": rows} if rows else {})
        and backlog == 0
        and users == rows
    )
    if quantity is not None:
        ok = ok and rows == quantity and result["redis_remaining"] == 0 and closed == "EXHAUSTED"
    result["ok"] = ok
    return result

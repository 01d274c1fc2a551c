"""The application's own CPU cost per request, without sockets or HTTP parsing: the ASGI app is
called directly (real PostgreSQL and Redis behind it), so the figure hardly depends on what else
the machine is doing and a change to the hot path shows up in seconds, not in a full wrk run.

    .venv/bin/python -m bench.inproc [--requests N] [--concurrency C] [--profile FILE]

Prints µs of this process's CPU per request for ``GET /healthz`` (the baseline) and for coupon
claims (each request another user's token, as in ``make bench``); ``--profile`` writes a cProfile
of the claims run. Redis and PostgreSQL spend their own CPU in their own processes (not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from bench.claims import CLAIM_ROUTE
from bench.harness import Backends
from haot.app import create_app
from haot.platform.auth import Role, TokenSigner
from haot.platform.settings import Settings

Call = tuple[str, list[tuple[bytes, bytes]]]


async def _call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _drive(
    app: Any, method: str, paths_and_headers: list[Call], c: int
) -> tuple[float, float, Counter[int]]:
    statuses: Counter[int] = Counter()
    queue = iter(paths_and_headers)

    async def worker() -> None:
        for path, headers in queue:
            statuses[await _call(app, method, path, headers)] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return time.process_time() - cpu, time.perf_counter() - wall, statuses


async def run(
    backends: Backends, requests: int, concurrency: int, profile: str | None, target: str
) -> None:
    secret = secrets.token_urlsafe(48)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",  # production refuses the built-in fake PortOne
        database_url=backends.database_url,
        redis_url=backends.redis_url,
        jwt_secret=secret,
        log_level="WARNING",
    )
    app = create_app(settings)
    signer = TokenSigner(secret, issuer="haot", audience="haot-api", ttl_seconds=900)
    admin = signer.issue(uuid.uuid4(), Role.ADMIN).token
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        asgi = manager.app
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bench")
        drop = CLAIM_ROUTE.format(event_id=await _seed(client, admin, 100))
        unlimited = CLAIM_ROUTE.format(event_id=await _seed(client, admin, None))
        await _drive(asgi, "GET", [("/healthz", [])] * 500, concurrency)  # warm-up

        async def measure(name: str, method: str, calls: list[Call]) -> None:
            profiler = cProfile.Profile() if profile and target == name else None
            if profiler:
                profiler.enable()
            cpu, wall, statuses = await _drive(asgi, method, calls, concurrency)
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile))
            print(_line(name, cpu, wall, len(calls), statuses))

        def claims(path: str) -> list[Call]:
            return [
                (path, [(b"authorization", f"Bearer {user_token()}".encode())])
                for _ in range(requests)
            ]

        def user_token() -> str:
            return signer.issue(uuid.uuid4(), Role.USER).token

        await measure("healthz", "GET", [("/healthz", [])] * requests)
        await measure("drop", "POST", claims(drop))
        await measure("unlimited", "POST", claims(unlimited))
        await client.aclose()


def _line(name: str, cpu: float, wall: float, n: int, statuses: Counter[int]) -> str:
    return (
        f"{name:12} {cpu / n * 1e6:8.1f} µs CPU/req  {n / wall:9.0f} req/s in-process  "
        f"{dict(statuses)}"
    )


async def _seed(client: httpx.AsyncClient, admin: str, quantity: int | None) -> str:
    from datetime import UTC, datetime, timedelta

    headers = {"Authorization": f"Bearer {admin}"}
    now = datetime.now(UTC)
    coupon = await client.post(
        "/api/v1/admin/coupons",
        headers=headers,
        json={
            "name": "In-process bench",
            "discount_type": "FIXED",
            "discount_value": 1000,
            "min_order_amount": 0,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_to": (now + timedelta(days=30)).isoformat(),
        },
    )
    coupon.raise_for_status()
    event = await client.post(
        "/api/v1/admin/coupon-events",
        headers=headers,
        json={
            "coupon_id": coupon.json()["id"],
            "starts_at": (now - timedelta(seconds=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "quantity": quantity,
        },
    )
    event.raise_for_status()
    return str(event.json()["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", default=None, help="write a cProfile of one run here")
    parser.add_argument("--target", choices=("healthz", "drop", "unlimited"), default="drop")
    args = parser.parse_args()
    backends = Backends()
    backends.claim_redis()
    backends.create_database()
    try:
        subprocess.run(
            [sys.executable, "-m", "haot.cli", "migrate"],
            env={
                **os.environ,
                "HAOT_DATABASE_URL": backends.database_url,
                "HAOT_REDIS_URL": backends.redis_url,
                "HAOT_JWT_SECRET": secrets.token_urlsafe(48),
            },
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
        )
        import uvloop

        uvloop.run(run(backends, args.requests, args.concurrency, args.profile, args.target))
    finally:
        backends.drop_database()
        backends.release_redis()


if __name__ == "__main__":
    main()

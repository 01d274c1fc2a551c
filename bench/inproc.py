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
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event

from bench import workloads
from bench.catalogue import Catalogue, load
from bench.claims import CLAIM_ROUTE
from bench.harness import Backends, machine_busy_seconds
from haot.app import create_app
from haot.platform.auth import Role, TokenSigner
from haot.platform.clock import seoul_today
from haot.platform.settings import Settings

RESERVATIONS = "/api/v1/reservations"
TARGETS = ("healthz", "drop", "unlimited", "cold_search", "warm_search", "booking", "sold_out")
Call = tuple[str, list[tuple[bytes, bytes]]] | tuple[str, list[tuple[bytes, bytes]], bytes]


async def _call(
    app: Any, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> int:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
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
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


@dataclass
class Run:
    cpu: float  # this process's CPU seconds
    elsewhere: float  # the rest of the machine's busy seconds (PostgreSQL, Redis)
    wall: float
    statuses: Counter[int]


async def _drive(app: Any, method: str, paths_and_headers: list[Call], c: int) -> Run:
    statuses: Counter[int] = Counter()
    queue = iter(paths_and_headers)

    async def worker() -> None:
        for path, headers, *body in queue:
            statuses[await _call(app, method, path, headers, *body)] += 1

    cpu, wall, machine = time.process_time(), time.perf_counter(), machine_busy_seconds()
    await asyncio.gather(*(worker() for _ in range(c)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Run(cpu, machine_busy_seconds() - machine - cpu, wall, statuses)


async def run(
    backends: Backends,
    requests: int,
    concurrency: int,
    profile: str | None,
    target: str,
    catalogue: Catalogue,
    only: list[str],
) -> None:
    secret = secrets.token_urlsafe(48)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",  # production refuses the built-in fake PortOne
        database_url=backends.database_url,
        redis_url=backends.redis_url,
        jwt_secret=secret,
        log_level="WARNING",
        max_pending_reservations_per_user=100,
        database_pool_size=int(os.environ.get("HAOT_DATABASE_POOL_SIZE", "10")),
    )
    app = create_app(settings)
    signer = TokenSigner(secret, issuer="haot", audience="haot-api", ttl_seconds=900)
    admin = signer.issue(uuid.uuid4(), Role.ADMIN).token
    async with LifespanManager(app, startup_timeout=600, shutdown_timeout=30) as manager:
        asgi = manager.app
        connects = Counter[str]()
        for engine in app.state.platform.databases.engines():
            event.listen(engine.sync_engine.pool, "connect", lambda *_: connects.update(["db"]))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://bench")
        drop = CLAIM_ROUTE.format(event_id=await _seed(client, admin, 100))
        unlimited = CLAIM_ROUTE.format(event_id=await _seed(client, admin, None))
        await _drive(asgi, "GET", [("/healthz", [])] * 500, concurrency)  # warm-up

        async def measure(name: str, method: str, calls: list[Call]) -> None:
            if only and name not in only:
                return
            profiler = cProfile.Profile() if profile and target == name else None
            if profiler:
                profiler.enable()
            connects.clear()
            result = await _drive(asgi, method, calls, concurrency)
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile))
            print(_line(name, result, len(calls), connects["db"]))

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
        searches = workloads.search_paths(catalogue, requests, random.Random(5))  # noqa: S311
        if not only or "cold_search" in only or "warm_search" in only:
            await _offer_index_ready(app)
        await measure("cold_search", "GET", [_get(path) for path in searches])
        warm = searches[:100] * (requests // 100)
        await _drive(asgi, "GET", [_get(path) for path in searches[:100]], concurrency)
        await measure("warm_search", "GET", [_get(path) for path in warm])
        await measure("booking", "POST", bookings(catalogue, requests, signer))
        await measure("sold_out", "POST", last_room(catalogue, requests, signer))
        await client.aclose()


def _get(path_and_query: str) -> Call:
    return (path_and_query, [])


async def _offer_index_ready(app: Any) -> None:
    index = app.state.platform.services["lodging.offers"]
    for _ in range(600):
        if index.ready:
            return
        await asyncio.sleep(0.5)
    raise SystemExit("the offer index did not load in 300 s")  # it loads before serving


def bookings(catalogue: Catalogue, requests: int, signer: TokenSigner) -> list[Call]:
    """Stays spread over the catalogue, 50 guests, an Idempotency-Key each (as in make bench)."""
    rng = random.Random(12)  # noqa: S311 (a reproducible workload, not a secret)
    room_types = workloads.booked_room_types(catalogue, 500, rng)
    bodies = workloads.stay_bodies(catalogue, room_types, requests, rng)
    guests = [signer.issue(uuid.uuid4(), Role.USER).token for _ in range(50)]
    return [(RESERVATIONS, _booking_headers(rng.choice(guests)), body.encode()) for body in bodies]


def last_room(catalogue: Catalogue, requests: int, signer: TokenSigner) -> list[Call]:
    """Every request wants the same 3 nights of one room type: all but its rooms answer 409."""
    room_type = catalogue.room_types[-1]
    (body,) = workloads.race_bodies(room_type, catalogue.first_night + timedelta(days=3))
    guests = [signer.issue(uuid.uuid4(), Role.USER).token for _ in range(50)]
    rng = random.Random(13)  # noqa: S311 (a reproducible workload, not a secret)
    return [
        (RESERVATIONS, _booking_headers(rng.choice(guests)), body.encode()) for _ in range(requests)
    ]


def _booking_headers(token: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"idempotency-key", uuid.uuid4().hex.encode()),
    ]


def _line(name: str, run: Run, n: int, connects: int) -> str:
    return (
        f"{name:12} {run.cpu / n * 1e6:8.1f} µs CPU/req (+{run.elsewhere / n * 1e6:7.1f} µs "
        f"elsewhere: PostgreSQL, Redis)  {n / run.wall:6.0f} req/s in-process  "
        f"{dict(run.statuses)}  {connects} new database connections"
    )


async def _seed(client: httpx.AsyncClient, admin: str, quantity: int | None) -> str:
    from datetime import UTC, datetime

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
    parser.add_argument(
        "--target",
        choices=(
            "healthz",
            "drop",
            "unlimited",
            "cold_search",
            "warm_search",
            "booking",
            "sold_out",
        ),
        default="drop",
    )
    parser.add_argument("--lodgings", type=int, default=300, help="catalogue size")
    parser.add_argument("--nights", type=int, default=60, help="nights per room type")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this target (repeatable)"
    )
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
        first_night = seoul_today() + timedelta(days=1)
        catalogue = asyncio.run(
            load(
                backends.database_dsn,
                lodgings=args.lodgings,
                nights=args.nights,
                first_night=first_night,
            )
        )
        import uvloop

        uvloop.run(
            run(
                backends,
                args.requests,
                args.concurrency,
                args.profile,
                args.target,
                catalogue,
                args.only,
            )
        )
    finally:
        backends.drop_database()
        backends.release_redis()


if __name__ == "__main__":
    main()

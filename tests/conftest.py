"""Shared fixtures: real backends (PostgreSQL, Redis, tansu), settings per backend, the app."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from haot.app import create_app
from haot.models import metadata
from haot.platform.db import create_engine
from haot.platform.migrate import migrate
from haot.platform.settings import TEST_JWT_SECRET, Settings
from tests.support.services import POSTGRES_ADMIN_URL, REDIS_URL, unavailable

pytest_plugins = ["tests.support.tansu"]

BACKENDS = ["sqlite", "postgres"]
E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests last: their deployments (some twenty processes with their own
    connections to the one PostgreSQL server) live until the session ends, and must not run
    beside the rest of the suite."""
    items.sort(key=lambda item: item.path.is_relative_to(E2E))


def in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking set-up (which may call asyncio.run) off the test event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(autouse=True)
def _haot_environment_left_as_found() -> Iterator[None]:
    """Every test leaves the ``HAOT_*`` environment as it found it: settings read it, so a value
    left behind (``haot serve`` writes ``HAOT_PUBLIC_BASE_URL``) would change later tests."""
    before = {name: value for name, value in os.environ.items() if name.startswith("HAOT_")}
    yield
    after = {name: value for name, value in os.environ.items() if name.startswith("HAOT_")}
    assert after == before, f"HAOT_* environment changed and not restored: {before} -> {after}"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "redis_url": _redis["url"],
        "jwt_secret": TEST_JWT_SECRET,
        "log_json": True,
        "log_level": "WARNING",
        "outbox_poll_interval_seconds": 0.05,
        # Tests run jobs explicitly (with ``as_of``); a scheduler firing every job at start-up
        # only adds writers that race the test's own (and SQLite has one writer).
        "jobs_schedule": False,
        "login_rate_per_minute": 1000,
        "login_ip_rate_per_minute": 10000,
        "login_failures_before_delay": 1000,
        "password_change_rate_per_minute": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once."""
    name = f"haot_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        in_thread(asyncio.run, admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", f"{POSTGRES_ADMIN_URL}: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    in_thread(migrate, make_settings(url))
    yield url
    in_thread(asyncio.run, admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "haot.db"
    url = f"sqlite+aiosqlite:///{path}"
    in_thread(migrate, make_settings(url))
    return url


# The Redis database this test session owns (see ``_own_redis_database``).
_redis: dict[str, str] = {"url": REDIS_URL}


@pytest.fixture(scope="session", autouse=True)
def _own_redis_database() -> Iterator[None]:
    """Claim a Redis database number no other concurrent test session uses (tests flush their
    database; two sessions sharing one would flush each other's state mid-test)."""
    base, _, default_db = REDIS_URL.rpartition("/")
    token = uuid.uuid4().hex

    async def claim() -> str | None:
        client = aioredis.Redis.from_url(f"{base}/0", socket_connect_timeout=2)
        try:
            for number in [int(default_db), *range(1, 16)]:
                if await client.set(f"haot:test-session:db{number}", token, nx=True, ex=3 * 3600):
                    return f"{base}/{number}"
            return None
        finally:
            await client.aclose()

    async def release(url: str) -> None:
        client = aioredis.Redis.from_url(f"{base}/0", socket_connect_timeout=2)
        try:
            key = f"haot:test-session:db{url.rpartition('/')[2]}"
            if (await client.get(key)) == token.encode():
                await client.delete(key)
        finally:
            await client.aclose()

    try:
        claimed = in_thread(asyncio.run, claim())
    except Exception:
        claimed = None  # Redis absent: tests that need it say so through ``redis_available``
    if claimed:
        _redis["url"] = claimed
    yield
    if claimed:
        in_thread(asyncio.run, release(claimed))


@pytest.fixture(scope="session")
def redis_available() -> str:
    url = _redis["url"]

    async def ping() -> None:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        in_thread(asyncio.run, ping())
    except Exception as exc:
        unavailable("Redis", f"{url}: {exc}")
    return url


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            # DELETE beats TRUNCATE for a handful of rows (TRUNCATE rewrites every table's
            # files); there are no foreign keys to order around.
            for table in metadata.sorted_tables:
                await conn.execute(text(f"DELETE FROM {table.name}"))  # noqa: S608 (our tables)
    finally:
        await engine.dispose()


async def _flush_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Runs a test once per database backend (the shared suite of both engines)."""
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{backend}_url")
    await _truncate(url)
    return url


@pytest.fixture
async def settings(database_url: str, redis_available: str) -> Settings:
    await _flush_redis(redis_available)
    return make_settings(database_url)


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The all-in-one app on the backend under test, driven in-process over ASGI."""
    app = create_app(settings)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

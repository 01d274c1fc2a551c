"""Actors of the lodging tests, on the app of the backend under test (sqlite and postgres)."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher

from haot.platform.settings import Settings
from tests.conftest import _flush_redis, make_settings
from tests.lodging.factories import Actor, make_admin, make_host, make_user


@pytest.fixture(autouse=True)
def _cheap_password_hashing(app_client: httpx.AsyncClient) -> None:
    """These tests sign up several accounts each; password hashing is identity's concern (tested
    there), so it runs with minimal argon2 cost here to keep the suite fast."""
    identity = app_client.app.state.platform.services.get("identity")  # type: ignore[attr-defined]
    if identity is not None and hasattr(identity, "_hasher"):
        identity._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
async def host(app_client: httpx.AsyncClient) -> Actor:
    return await make_host(app_client, "host-a")


@pytest.fixture
async def other_host(app_client: httpx.AsyncClient) -> Actor:
    return await make_host(app_client, "host-b")


@pytest.fixture
async def guest(app_client: httpx.AsyncClient) -> Actor:
    return await make_user(app_client)


@pytest.fixture
async def admin(app_client: httpx.AsyncClient) -> Actor:
    return await make_admin(app_client)


# Search answers from the in-memory offer index or from SQL (ADR 0014): the search suites run on
# both, so the two stay interchangeable; the other lodging tests run on the default (the index).
_SEARCH_SUITES = ("tests.lodging.test_search", "tests.lodging.test_cache_and_queries")


@pytest.fixture
def search_path() -> str:
    return "offer-index"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in _SEARCH_SUITES and "settings" in metafunc.fixturenames:
        metafunc.parametrize("search_path", ["offer-index", "sql"])


@pytest.fixture
async def settings(database_url: str, redis_available: str, search_path: str) -> Settings:
    await _flush_redis(redis_available)
    return make_settings(database_url, search_index=search_path == "offer-index")

"""Actors of the lodging tests, on the app of the backend under test (sqlite and postgres)."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher

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

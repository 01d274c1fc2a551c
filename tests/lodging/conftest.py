"""Actors of the lodging tests, on the app of the backend under test (sqlite and postgres)."""

from __future__ import annotations

import httpx
import pytest

from tests.lodging.factories import Actor, make_admin, make_host, make_user


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

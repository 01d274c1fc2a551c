"""A real nginx (Debian's) rendered by ``haot.gateway`` in front of stub upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.gateway.stubs import Gateway, Stub, addresses, running_gateway, running_stubs


@pytest.fixture(scope="module")
async def stubs() -> AsyncIterator[dict[str, Stub]]:
    async with running_stubs() as running:
        yield running


@pytest.fixture(scope="module")
async def gateway(stubs: dict[str, Stub]) -> AsyncIterator[Gateway]:
    """The gateway in front of every stub, with limits no test here reaches."""
    async with running_gateway(addresses(stubs)) as running:
        yield running


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as http:
        yield http

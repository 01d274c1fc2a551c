"""The app served by uvicorn on a loopback port, for what an in-process transport cannot show:
streaming (server-sent events), real sockets and disconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import uvicorn
from purgatory import AsyncCircuitBreakerFactory
from starlette.types import ASGIApp

from haot.app import create_app
from haot.platform.container import Platform
from haot.platform.errors import HaotError
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import Settings
from tests.support.gateway import InMemoryGateway
from tests.support.services import free_port


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a loopback port (its lifespan included): its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(250):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@contextlib.asynccontextmanager
async def context_alone(
    settings: Settings, context: str, **options: Any
) -> AsyncIterator[tuple[str, Platform]]:
    """``haot serve --context <context>``: one context alone on a loopback port (ADR 0018)."""
    app = create_app(settings, contexts=(context,), **options)
    async with serving(app) as base:
        yield base, app.state.platform


def service_client(
    base: str,
    settings: Settings,
    callee: str,
    errors: Mapping[str, type[HaotError]],
    *,
    caller: str = "reservation",
) -> ServiceClient:
    """A client of ``callee`` at ``base`` with ``caller``'s service credentials."""
    return ServiceClient(
        callee=callee,
        base_url=base,
        tokens=ServiceTokens(settings.service_token_secret, caller=caller),
        breakers=AsyncCircuitBreakerFactory(),
        errors=errors,
    )


@contextlib.asynccontextmanager
async def real_server(
    settings: Settings, *, fake_portone: bool = False
) -> AsyncIterator[tuple[str, Platform]]:
    """The app on a loopback port (SSE needs a streaming client; ASGITransport buffers); with
    ``fake_portone``, the built-in fake PortOne (its checkout page) instead of the in-memory
    gateway."""
    port = free_port()
    if fake_portone:
        settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, gateway=None if fake_portone else InMemoryGateway())
    async with serving(app, port) as base:
        yield base, app.state.platform

"""The app served by uvicorn on a loopback port, for what an in-process transport cannot show:
streaming (server-sent events), real sockets and disconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from haot.app import create_app
from haot.platform.container import Platform
from haot.platform.settings import Settings
from tests.support.gateway import InMemoryGateway
from tests.support.services import free_port


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
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "server did not start"
        yield f"http://127.0.0.1:{port}", app.state.platform
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)

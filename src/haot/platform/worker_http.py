"""The probes and ``/metrics`` of ``haot worker`` (``--metrics-port``), served inside its loop.

A worker is where consumers, relays and jobs run in the split and Kafka deployments: its counters
(consumer lag, relay errors, poison events, job runs, coupon issuance) exist only in its own
process, so Prometheus must scrape it like a server. The same routes as ``haot serve``'s
(``probes``), on uvicorn, with no API beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette

from haot.platform.probes import probe_routes
from haot.platform.settings import Settings

if TYPE_CHECKING:
    from haot.platform.container import Platform


class _ServerInsideWorker(uvicorn.Server):
    """uvicorn as one task of the worker's loop: the worker owns SIGTERM and SIGINT (it stops
    its consumers first) and tells the server when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def probe_app(settings: Settings, platform: Platform) -> Starlette:
    app = Starlette(routes=probe_routes(settings))
    app.state.platform = platform
    return app


class WorkerProbes:
    """Serves ``probe_app`` on ``host:port`` until ``stop``; ``start`` returns once it listens
    (a port that cannot be bound fails the worker's start, not a background task later)."""

    def __init__(self, settings: Settings, platform: Platform, *, host: str, port: int) -> None:
        config = uvicorn.Config(
            probe_app(settings, platform),
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,  # the worker's JSON logging is already configured
            server_header=False,
        )
        self._server = _ServerInsideWorker(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="worker-probes")
        while not self._server.started:
            if self._task.done():  # it could not bind: its exception says why
                await self._task
                raise RuntimeError("the worker's probe server stopped before it listened")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task

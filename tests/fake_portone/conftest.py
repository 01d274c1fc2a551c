"""The fake PortOne inside the real app (``create_app``), a webhook receiver, and the official SDK
pointed at the fake: in-process through the adapter's transport, or untouched over a real socket."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from portone_server_sdk import PaymentClient, PortOneClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from haot.app import create_app
from haot.fake_portone import FakePortOne
from haot.payment.portone import PortOneGateway
from haot.platform.settings import Settings
from tests.conftest import _flush_redis, make_settings
from tests.support.services import free_port

API_SECRET = "test-portone-api-secret"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RECEIVER_URL = "http://receiver.test/portone-webhooks"
BASE = "http://testserver"
FAKE_BASE = f"{BASE}/fake-portone"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A merchant endpoint: records every webhook request and answers ``statuses`` in turn
    (then ``default``)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/portone-webhooks", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        status = self.statuses.pop(0) if self.statuses else self.default
        self.requests.append(Delivery(dict(request.headers), await request.body(), status))
        return Response(status_code=status)

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.requests if 200 <= d.status < 300]

    def types(self) -> list[str]:
        return [d.json["type"] for d in self.accepted]


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient  # to the whole app, in-process
    fake: FakePortOne
    gateway: PortOneGateway  # the adapter, driven in-process over ASGITransport
    receiver: Receiver
    settings: Settings

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    def gateway_with(self, **overrides: Any) -> PortOneGateway:
        values: dict[str, Any] = {
            "api_secret": API_SECRET,
            "base_url": FAKE_BASE,
            "webhook_secret": WEBHOOK_SECRET,
            "transport": self.transport(),
        }
        values.update(overrides)
        return PortOneGateway(**values)

    async def pre_register(self, payment_id: str, amount: int) -> None:
        await self.gateway.pre_register(payment_id, amount=amount)

    async def approve(self, payment_id: str, **fields: str) -> httpx.Response:
        response = await self.client.post(
            f"/fake-portone/checkout/{payment_id}/approve", data=fields
        )
        assert response.status_code == 303, response.text
        return response

    async def decline(self, payment_id: str) -> httpx.Response:
        response = await self.client.post(f"/fake-portone/checkout/{payment_id}/decline")
        assert response.status_code == 303, response.text
        return response

    async def paid(self, payment_id: str, amount: int) -> None:
        await self.pre_register(payment_id, amount)
        await self.approve(payment_id)


def fake_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "portone_api_secret": API_SECRET,
        "portone_webhook_secret": WEBHOOK_SECRET,
        "portone_webhook_url": RECEIVER_URL,
        "public_base_url": BASE,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
async def portone_settings(sqlite_url: str, redis_available: str) -> Settings:
    await _flush_redis(redis_available)
    return fake_settings(sqlite_url)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def make_harness(receiver: Receiver) -> AsyncIterator[Callable[[Settings], Any]]:
    """Start ``create_app(settings)`` with the fake mounted; webhooks go to ``receiver``."""
    stack: list[tuple[LifespanManager, list[Any]]] = []

    async def start(settings: Settings) -> Harness:
        app = create_app(settings, run_workers=False)  # the fake needs no relays or jobs
        manager = LifespanManager(app, shutdown_timeout=30)
        await manager.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=BASE)
        fake: FakePortOne = app.state.fake_portone
        fake.sender.http_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=receiver.app), base_url="http://receiver.test"
        )
        fake.sender.backoff = 0.01
        fake.sender.attempts = 5
        gateway = PortOneGateway(
            api_secret=API_SECRET,
            base_url=FAKE_BASE,
            webhook_secret=WEBHOOK_SECRET,
            transport=httpx.ASGITransport(app=manager.app),
        )
        stack.append((manager, [client, fake.sender.http_client, gateway]))
        return Harness(app, client, fake, gateway, receiver, settings)

    yield start
    for manager, closables in reversed(stack):
        for closable in closables:
            await closable.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def harness(portone_settings: Settings, make_harness: Callable[[Settings], Any]) -> Harness:
    result: Harness = await make_harness(portone_settings)
    return result


_sdk_clients: dict[tuple[str, str], Any] = {}


def sdk_client(kind: type[Any], base_url: str) -> Any:
    """The SDK's clients build a dozen httpx clients each (~0.5 s): build one per kind and URL."""
    key = (kind.__name__, base_url)
    if key not in _sdk_clients:
        _sdk_clients[key] = kind(secret=API_SECRET, base_url=base_url)
    return _sdk_clients[key]


@dataclass
class LiveServer:
    url: str
    fake: FakePortOne

    @property
    def fake_base(self) -> str:
        return f"{self.url}/fake-portone"

    @property
    def payment(self) -> PaymentClient:
        client: PaymentClient = sdk_client(PaymentClient, self.fake_base)
        return client

    @property
    def portone(self) -> PortOneClient:
        client: PortOneClient = sdk_client(PortOneClient, self.fake_base)
        return client


@pytest.fixture(scope="session")
def live_port() -> int:
    return free_port()


@pytest.fixture
async def live(
    portone_settings: Settings, receiver: Receiver, live_port: int
) -> AsyncIterator[LiveServer]:
    """The app on a real socket (uvicorn), so the official SDK runs exactly as shipped."""
    settings = portone_settings.model_copy(
        update={"public_base_url": f"http://127.0.0.1:{live_port}"}
    )
    app = create_app(settings, run_workers=False)
    fake: FakePortOne = app.state.fake_portone
    receiver_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app))
    fake.sender.http_client = receiver_client
    fake.sender.backoff = 0.01
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=live_port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    assert server.started, "uvicorn did not start"
    try:
        yield LiveServer(f"http://127.0.0.1:{live_port}", fake)
    finally:
        server.should_exit = True
        await task
        await receiver_client.aclose()


def roundtrip(raw: dict[str, Any], deserialize: Any, serialize: Any) -> Any:
    """Deserialize with the SDK, serialize back: equal only when the SDK understood every field
    (unknown or misspelled fields would be dropped, wrong types would raise)."""
    parsed = deserialize(copy.deepcopy(raw))
    assert serialize(parsed) == raw
    return parsed

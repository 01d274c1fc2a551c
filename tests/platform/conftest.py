"""A probe app for the platform's HTTP mechanics: the real ``create_app`` (middleware, problem
handlers, lifespan) plus a few test-only routes, added before the lifespan starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from haot.app import create_app
from haot.platform.auth import Role
from haot.platform.errors import Conflict, HaotError, RateLimited, ServiceUnavailable
from haot.platform.settings import Settings
from haot.platform.web import CurrentUser

SECRET_IN_EXCEPTION = "db-password=hunter2-do-not-leak"

# For mechanics that never reach the database: run them on one backend, not both.
one_backend = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class Teapot(HaotError):
    status = 418
    code = "teapot_refused"
    title = "I refuse to brew coffee"


@dataclass
class Probe:
    """What the probe routes did, and what they should do next."""

    calls: int = 0
    delay: float = 0.0
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    fail_next: list[str] = field(default_factory=list)
    seen_users: list[str] = field(default_factory=list)


class ItemIn(BaseModel):
    name: str


router = APIRouter(prefix="/probe")


def _probe(request: Request) -> Probe:
    probe: Probe = request.app.state.probe
    return probe


async def _run(probe: Probe) -> JSONResponse:
    probe.calls += 1
    probe.started.set()
    if probe.gate is not None:
        await probe.gate.wait()
    if probe.delay:
        await asyncio.sleep(probe.delay)
    mode = probe.fail_next.pop(0) if probe.fail_next else None
    if mode == "crash":
        raise RuntimeError(SECRET_IN_EXCEPTION)
    if mode == "unavailable":
        raise ServiceUnavailable("try later", retry_after=3)
    if mode == "conflict":
        raise Conflict("sold out")
    if mode == "rate_limited":
        raise RateLimited(retry_after=2)
    item_id = uuid.uuid4().hex
    return JSONResponse(
        {"id": item_id, "n": probe.calls},
        status_code=201,
        headers={"Location": f"/probe/items/{item_id}", "X-Not-Stored": "1"},
    )


@router.post("/items", status_code=201)
async def create_item(body: ItemIn, request: Request) -> JSONResponse:
    return await _run(_probe(request))


@router.post("/me/items", status_code=201)
async def create_my_item(body: ItemIn, principal: CurrentUser, request: Request) -> JSONResponse:
    probe = _probe(request)
    probe.seen_users.append(str(principal.user_id))
    return await _run(probe)


@router.post("/tokens")
async def issue_token(request: Request) -> JSONResponse:
    probe = _probe(request)
    probe.calls += 1
    return JSONResponse(
        {"token": uuid.uuid4().hex}, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


@router.get("/teapot")
async def teapot() -> None:
    raise Teapot("short and stout", headers={"X-Brew": "tea"}, extra={"brew": "earl grey"})


@router.get("/crash")
async def crash() -> None:
    raise RuntimeError(SECRET_IN_EXCEPTION)


@router.get("/sql")
async def run_sql(request: Request, statement: str, value: str = "") -> dict[str, str]:
    """Runs one of a few fixed statements: database errors as a route meets them."""
    statements = {
        "missing_table": "SELECT * FROM no_such_table_here",
        "cast": "SELECT CAST(:value AS INTEGER)",
    }
    sessions = request.app.state.platform.databases.sessions_for("platform")
    async with sessions() as session:
        result = await session.execute(text(statements[statement]), {"value": value})
        return {"result": str(result.scalar())}


@router.get("/things/{thing_id}")
async def read_thing(thing_id: str) -> dict[str, str]:
    return {"id": thing_id}


nested = APIRouter()


@nested.get("/things/{thing_id}")
async def read_nested_thing(thing_id: str) -> dict[str, str]:
    return {"id": thing_id}


mounted = FastAPI()


@mounted.get("/items/{item_id}")
async def read_mounted_item(item_id: str) -> dict[str, str]:
    return {"id": item_id}


def build_probe_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.include_router(router)
    app.include_router(nested, prefix="/probe/nested")
    app.mount("/probe/mounted", mounted)
    app.state.probe = Probe()
    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the lifespan and drive the app over ASGI. App exceptions are re-raised by the
    transport, so a test fails if any exception escapes the middleware stack."""
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def probe_app(settings: Settings) -> FastAPI:
    return build_probe_app(settings)


@pytest.fixture
async def probe_client(probe_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(probe_app) as client:
        yield client


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_probe_client(settings: Settings) -> ClientFactory:
    """``async with make_probe_client(**setting_overrides) as client``: another probe app."""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return serve(build_probe_app(settings.model_copy(update=overrides)))

    return factory


@pytest.fixture
def probe(probe_app: FastAPI) -> Probe:
    state: Probe = probe_app.state.probe
    return state


def bearer(
    app: FastAPI, role: Role = Role.USER, user_id: uuid.UUID | None = None
) -> dict[str, str]:
    token = app.state.platform.signer.issue(user_id or uuid.uuid4(), role).token
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].startswith("https://")
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body

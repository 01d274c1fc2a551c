"""Identity test helpers: unique accounts, HTTP shortcuts, the problem+json check, an app of one's
own settings, and a gated password hasher for races."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from haot.app import create_app
from haot.identity.models import User
from haot.identity.schemas import SignUp
from haot.identity.service import IdentityService
from haot.platform.auth import Role
from haot.platform.container import Platform
from haot.platform.ids import new_id
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings

API = "/api/v1"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "purple monkey dishwasher"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}

_serial = itertools.count(1)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_serial)}.{uuid.uuid4().hex[:6]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Every error is RFC 9457 problem+json with a stable machine ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code, body
    return body


def problem_mismatch(response: httpx.Response, status: int, code: str) -> str | None:
    """Why ``response`` is not the expected problem, or None: for table-driven tests that run every
    case through one app and report all the failing ones together."""
    try:
        assert_problem(response, status, code)
    except (AssertionError, ValueError, KeyError):
        return (
            f"{response.status_code} {response.headers.get('content-type')} {response.text[:300]}"
        )
    return None


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


async def sign_up(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    name: str = "Kim Minji",
    **extra: Any,
) -> httpx.Response:
    body = {"email": email or unique_email(), "password": password, "name": name, **extra}
    return await client.post(f"{API}/auth/signup", json=body)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


async def register(
    client: httpx.AsyncClient, *, email: str | None = None, host: bool = False
) -> Account:
    """Sign up and log in over HTTP."""
    email = email or unique_email("host" if host else "user")
    created = await sign_up(client, email=email, host=host)
    assert created.status_code == 201, created.text
    return await _logged_in(client, created.json()["id"], email)


async def register_admin(client: httpx.AsyncClient) -> Account:
    """Admins are made by operators (``haot create-user``), never by sign-up."""
    email = unique_email("admin")
    identity = identity_of(client)
    admin = await identity.create_user(
        SignUp(email=email, password=PASSWORD, name="Admin Park"), Role.ADMIN
    )
    return await _logged_in(client, str(admin.id), email)


async def _logged_in(client: httpx.AsyncClient, user_id: str, email: str) -> Account:
    login = await log_in(client, email)
    assert login.status_code == 200, login.text
    tokens = login.json()
    return Account(user_id, email, PASSWORD, tokens["access_token"], tokens["refresh_token"])


def minted_admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """A genuine ADMIN access token without an account behind it (admin routes trust the token's
    role), for tests that only need to get past the guard."""
    return bearer(platform_of(client).signer.issue(new_id(), Role.ADMIN).token)


def platform_of(client: httpx.AsyncClient) -> Platform:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform


def identity_of(client: httpx.AsyncClient) -> IdentityService:
    service: IdentityService = platform_of(client).services["identity"]
    return service


async def count_users(platform: Platform, *, role: Role | None = None) -> int:
    query = select(func.count()).select_from(User)
    if role is not None:
        query = query.where(User.role == role.value)
    async with platform.databases.sessions_for("identity")() as session:
        return int((await session.execute(query)).scalar_one())


async def outbox_events(platform: Platform, event_type: str) -> list[OutboxMessage]:
    async with platform.databases.sessions_for("identity")() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.type == event_type).order_by(OutboxMessage.id)
        )
        return list(rows.all())


@asynccontextmanager
async def app_with(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The all-in-one app on settings of the test's choosing (like the ``app_client`` fixture)."""
    app = create_app(settings)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class GatedHasher(PasswordHasher):
    """The real argon2id hasher (OWASP parameters) whose next ``verify``, once armed, stops at a
    gate: the test acts while a log-in is between reading the account and issuing tokens."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self.entered = threading.Event()
        self.release = threading.Event()
        self._armed = False
        self._lock = threading.Lock()

    def arm(self) -> None:
        with self._lock:
            self._armed = True

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            gated, self._armed = self._armed, False
        if gated:
            self.entered.set()
            if not self.release.wait(timeout=10):
                raise TimeoutError("the test never released the gate")
        return super().verify(hash, password)

"""Builders for the lodging tests: accounts and tokens through the identity API, lodging payloads,
listings (lodging + room type + open calendar), dates relative to today in Asia/Seoul, and a
statement counter for the lodging database."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import event

from haot.identity.schemas import SignUp
from haot.platform.auth import Role
from haot.platform.clock import seoul_today

API = "/api/v1"
PASSWORD = "correct horse battery staple"
PROBLEM_JSON = "application/problem+json"

FRIDAY, SATURDAY = 4, 5


# --------------------------------------------------------------------------------------- dates


def today() -> date:
    return seoul_today()


def day(offset: int) -> date:
    """Today (Asia/Seoul) plus ``offset`` days."""
    return today() + timedelta(days=offset)


def next_weekday(start: date, weekday: int) -> date:
    """The first date on or after ``start`` falling on ``weekday`` (Monday = 0)."""
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def last_day_of_month(d: date) -> date:
    first_next = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_next - timedelta(days=1)


def nights(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def month(d: date) -> str:
    return f"{d:%Y-%m}"


# -------------------------------------------------------------------------------------- actors


@dataclass(frozen=True)
class Actor:
    id: str
    email: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _log_in(client: httpx.AsyncClient, user: dict[str, Any]) -> Actor:
    login = await client.post(
        f"{API}/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return Actor(
        id=str(user["id"]),
        email=str(user["email"]),
        role=str(user["role"]),
        token=login.json()["access_token"],
    )


async def sign_up(client: httpx.AsyncClient, *, host: bool, label: str = "user") -> Actor:
    email = f"{label}-{uuid.uuid4().hex[:10]}@example.com"
    created = await client.post(
        f"{API}/auth/signup",
        json={"email": email, "password": PASSWORD, "name": label.title(), "host": host},
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == ("HOST" if host else "USER")
    return await _log_in(client, created.json())


async def make_host(client: httpx.AsyncClient, label: str = "host") -> Actor:
    return await sign_up(client, host=True, label=label)


async def make_user(client: httpx.AsyncClient, label: str = "guest") -> Actor:
    return await sign_up(client, host=False, label=label)


async def make_admin(client: httpx.AsyncClient) -> Actor:
    """ADMIN is not self-service: created the operator way (``haot create-user``), then logs in."""
    identity = client.app.state.platform.services["identity"]  # type: ignore[attr-defined]
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    user = await identity.create_user(
        SignUp(email=email, password=PASSWORD, name="Admin"), Role.ADMIN
    )
    return await _log_in(client, user.model_dump(mode="json"))


# ------------------------------------------------------------------------------------ payloads


def lodging_payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Hanok Stay Gangnam",
        "description": "A quiet hanok near the river",
        "address": "123 Teheran-ro, Gangnam-gu",
        "region": {"city": "Seoul", "district": "Gangnam"},
        "latitude": 37.4979,
        "longitude": 127.0276,
        "amenities": ["wifi", "parking"],
        "image_urls": ["https://img.example.com/a.jpg"],
        "max_guests": 4,
        "check_in_time": "15:00",
        "check_out_time": "11:00",
        "max_nights": 30,
        "cancellation_policy": [
            {"days_before": 7, "refund_percent": 100},
            {"days_before": 1, "refund_percent": 50},
            {"days_before": 0, "refund_percent": 0},
        ],
    }
    body.update(overrides)
    return body


async def create_lodging(
    client: httpx.AsyncClient, host: Actor, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/host/lodgings", json=lodging_payload(**overrides), headers=host.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_room_type(
    client: httpx.AsyncClient,
    host: Actor,
    lodging_id: str,
    *,
    name: str = "Standard Double",
    capacity: int = 2,
    total_rooms: int = 3,
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/host/lodgings/{lodging_id}/room-types",
        json={"name": name, "capacity": capacity, "total_rooms": total_rooms},
        headers=host.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_calendar(
    client: httpx.AsyncClient, host: Actor, room_type_id: str, start: date, end: date, **fields: Any
) -> httpx.Response:
    body = {"start": start.isoformat(), "end": end.isoformat(), **fields}
    return await client.put(
        f"{API}/host/room-types/{room_type_id}/calendar", json=body, headers=host.headers
    )


async def open_calendar(
    client: httpx.AsyncClient,
    host: Actor,
    room_type_id: str,
    start: date,
    end: date,
    *,
    price: int = 100_000,
    **fields: Any,
) -> dict[str, Any]:
    response = await put_calendar(client, host, room_type_id, start, end, price=price, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def host_month(
    client: httpx.AsyncClient, host: Actor, room_type_id: str, month_: str
) -> dict[str, dict[str, Any]]:
    """The host calendar of a month, keyed by ISO date."""
    response = await client.get(
        f"{API}/host/room-types/{room_type_id}/calendar",
        params={"month": month_},
        headers=host.headers,
    )
    assert response.status_code == 200, response.text
    return {d["date"]: d for d in response.json()["days"]}


@dataclass(frozen=True)
class Listing:
    lodging: dict[str, Any]
    room_type: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.lodging["id"])

    @property
    def room_type_id(self) -> str:
        return str(self.room_type["id"])


async def create_listing(
    client: httpx.AsyncClient,
    host: Actor,
    *,
    start: date | None = None,
    end: date | None = None,
    price: int = 100_000,
    capacity: int = 2,
    total_rooms: int = 3,
    **lodging_overrides: Any,
) -> Listing:
    """A lodging with one room type whose nights ``[start, end)`` are open at ``price``
    (default: today+1 .. today+40)."""
    lodging = await create_lodging(client, host, **lodging_overrides)
    room_type = await create_room_type(
        client, host, lodging["id"], capacity=capacity, total_rooms=total_rooms
    )
    await open_calendar(client, host, room_type["id"], start or day(1), end or day(41), price=price)
    return Listing(lodging=lodging, room_type=room_type)


# ---------------------------------------------------------------------------------- public API


async def search(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    query = {
        k: (v.isoformat() if isinstance(v, date) else v) for k, v in params.items() if v is not None
    }
    return await client.get(f"{API}/lodgings", params=query)


async def search_ok(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await search(client, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [str(item["id"]) for item in page["items"]]


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "code"} <= body.keys()
    if code is not None:
        assert body["code"] == code, body


# -------------------------------------------------------------------------------- inventory


def _lodging_client(client: httpx.AsyncClient) -> Any:
    """The lodging context's interface for reservations (hold / confirm / release)."""
    return client.app.state.platform.services["lodging.client"]  # type: ignore[attr-defined]


async def hold_night(
    client: httpx.AsyncClient, room_type_id: str, night: date, *, confirm: bool = False
) -> uuid.UUID:
    """Hold one room of one night the way a reservation does (and sell it when ``confirm``);
    answers the reservation id for ``release_hold``. A hold empties the lodging's cached calendars,
    not the cached search pages, so tests hold before their first search."""
    lodging = _lodging_client(client)
    reservation_id = uuid.uuid4()
    await lodging.hold(reservation_id, uuid.UUID(room_type_id), night, night + timedelta(days=1), 1)
    if confirm:
        assert await lodging.confirm(reservation_id)
    return reservation_id


async def confirm_hold(client: httpx.AsyncClient, reservation_id: uuid.UUID) -> None:
    assert await _lodging_client(client).confirm(reservation_id)


async def release_hold(client: httpx.AsyncClient, reservation_id: uuid.UUID) -> None:
    assert await _lodging_client(client).release(reservation_id)


async def set_inventory(
    client: httpx.AsyncClient, room_type_id: str, night: date, *, held: int = 0, sold: int = 0
) -> list[uuid.UUID]:
    """Put ``held`` held and ``sold`` sold rooms on one untouched night, through holds."""
    return [
        await hold_night(client, room_type_id, night, confirm=i < sold) for i in range(held + sold)
    ]


# ------------------------------------------------------------------------- statement counting

_counting: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "lodging_test_statements", default=None
)
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def install_statement_counter(client: httpx.AsyncClient) -> None:
    """Record the SQL statements of the lodging database run by the current task (and the tasks it
    starts), so the outbox relay polling in the background is never counted."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    sync_engine = platform.databases.engine_for("lodging").sync_engine

    def before_cursor_execute(*args: Any) -> None:
        statement: str = args[2]
        recorded = _counting.get()
        if recorded is None or statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            return
        recorded.append(statement)

    event.listen(sync_engine, "before_cursor_execute", before_cursor_execute)


@contextmanager
def count_statements() -> Iterator[list[str]]:
    recorded: list[str] = []
    token = _counting.set(recorded)
    try:
        yield recorded
    finally:
        _counting.reset(token)

"""Review fixtures: the real app (``create_app`` with the in-memory gateway) over ASGI on both
database engines, completed stays made the way a guest makes them (book, pay at the gateway,
come back; the complete-stays job run as of the day after check-out; every event delivered), and
the review context's "today" moved by the test.

``world`` runs on SQLite and PostgreSQL; tests marked ``postgres_only`` (the concurrency hammers)
run on PostgreSQL alone. Tokens are minted (no sign-up), as in ``tests/reservation``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from haot.app import create_app
from haot.lodging.models import Lodging
from haot.platform.auth import Principal, Role
from haot.platform.clock import SEOUL, seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.events import Event
from haot.platform.inbox import Consumer
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from haot.review.events import LodgingRatingChanged
from haot.review.models import LodgingReviewStats, Review
from tests.conftest import _flush_redis, make_settings
from tests.reservation.conftest import World, open_lodging
from tests.reservation.helpers import book, pay, problem, read
from tests.support.gateway import InMemoryGateway, pay_at_checkout

postgres_only = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

API = "/api/v1"
ROOMS = 20  # rooms of the default room type: several stays of the same nights can exist


class ReviewDay:
    """The review context's ``seoul_today``, set by the test (None: the real day)."""

    def __init__(self) -> None:
        self.today: date | None = None

    def __call__(self, now: datetime | None = None) -> date:
        return self.today if self.today is not None else seoul_today(now)


@pytest.fixture(autouse=True)
def review_day(monkeypatch: pytest.MonkeyPatch) -> ReviewDay:
    day = ReviewDay()
    monkeypatch.setattr("haot.review.service.seoul_today", day)
    return day


@dataclass(frozen=True)
class Stay:
    guest: Principal
    reservation_id: str
    lodging_id: uuid.UUID
    check_in: date
    check_out: date


@asynccontextmanager
async def app_world(settings: Settings, *, rooms: int = ROOMS) -> AsyncIterator[World]:
    """``create_app`` with the in-memory gateway, over ASGI; relays, consumers run in-process;
    a host with a lodging whose room type has ``rooms`` rooms open for 60 nights from today."""
    gateway = InMemoryGateway()
    app = create_app(settings, gateway=gateway)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        platform: Platform = app.state.platform
        host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
        today = seoul_today()
        lodging_id, room_type_id = await open_lodging(platform, host, today, rooms=rooms)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            built = World(platform, gateway, host, room_type_id, lodging_id, today, client)
            yield built
            await built.settle()


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async with app_world(settings) as built:
        yield built


@pytest.fixture
async def short_window_world(
    database_url: str, redis_available: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """The app configured the way an operator would: HAOT_REVIEW_WINDOW_DAYS=7."""
    await _flush_redis(redis_available)
    monkeypatch.setenv("HAOT_REVIEW_WINDOW_DAYS", "7")
    settings = make_settings(database_url)
    assert settings.review_window_days == 7
    async with app_world(settings) as built:
        yield built


# Stays ---------------------------------------------------------------------------------------


def noon_seoul(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=SEOUL)


async def complete_stays(world: World, day: date) -> int:
    """The complete-stays job as of ``day`` (Seoul), then every event delivered."""
    result = await world.platform.jobs.run("complete-stays", as_of=noon_seoul(day))
    await world.settle()
    completed: int = result["completed"]
    return completed


def _stay_of(guest: Principal, created: dict[str, Any], lodging_id: uuid.UUID) -> Stay:
    return Stay(
        guest=guest,
        reservation_id=str(created["id"]),
        lodging_id=lodging_id,
        check_in=date.fromisoformat(created["check_in"]),
        check_out=date.fromisoformat(created["check_out"]),
    )


async def confirmed_stay(
    world: World,
    guest: Principal | None = None,
    *,
    start: int = 1,
    nights: int = 1,
    room_type_id: uuid.UUID | None = None,
    lodging_id: uuid.UUID | None = None,
) -> Stay:
    """A stay booked and paid over HTTP: CONFIRMED."""
    guest = guest or world.guest()
    created = await book(world, guest, start, nights, room_type_id)
    await pay(world, guest, created)
    created = await read(world, guest, created["id"])
    return _stay_of(guest, created, lodging_id or world.lodging_id)


async def completed_stay(
    world: World,
    guest: Principal | None = None,
    *,
    start: int = 1,
    nights: int = 1,
    room_type_id: uuid.UUID | None = None,
    lodging_id: uuid.UUID | None = None,
) -> Stay:
    """A stay booked, paid and completed (the job run as of the day after check-out)."""
    stay = await confirmed_stay(
        world, guest, start=start, nights=nights, room_type_id=room_type_id, lodging_id=lodging_id
    )
    await complete_stays(world, stay.check_out + timedelta(days=1))
    assert (await read(world, stay.guest, stay.reservation_id))["status"] == "COMPLETED"
    return stay


async def completed_stays(
    world: World,
    count: int,
    *,
    start: int = 1,
    nights: int = 1,
    room_type_id: uuid.UUID | None = None,
    lodging_id: uuid.UUID | None = None,
) -> list[Stay]:
    """``count`` guests, one completed stay each, booked and paid concurrently over HTTP."""
    guests = [world.guest() for _ in range(count)]
    created = await asyncio.gather(
        *(book(world, guest, start, nights, room_type_id) for guest in guests)
    )
    for each in created:
        await pay_at_checkout(world.platform, world.gateway, each["payment_id"])

    async def come_back(guest: Principal, each: dict[str, Any]) -> None:
        response = await world.http.post(
            f"{API}/payments/{each['payment_id']}/complete", headers=world.auth(guest)
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "PAID"

    await asyncio.gather(*(come_back(g, c) for g, c in zip(guests, created, strict=True)))
    await world.settle()
    stays = [
        _stay_of(guest, await read(world, guest, each["id"]), lodging_id or world.lodging_id)
        for guest, each in zip(guests, created, strict=True)
    ]
    last_check_out = max(stay.check_out for stay in stays)
    assert await complete_stays(world, last_check_out + timedelta(days=1)) >= count
    for stay in stays:
        assert (await read(world, stay.guest, stay.reservation_id))["status"] == "COMPLETED"
    return stays


# The review API --------------------------------------------------------------------------------


async def write(world: World, stay: Stay, *, who: Principal | None = None, **body: Any) -> Any:
    """POST the stay's review (by its guest unless ``who``); the raw response."""
    body.setdefault("rating", 5)
    return await world.http.post(
        f"{API}/reservations/{stay.reservation_id}/review",
        json=body,
        headers=world.auth(who or stay.guest),
    )


async def written(world: World, stay: Stay, **body: Any) -> dict[str, Any]:
    response = await write(world, stay, **body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def edit(world: World, who: Principal, review_id: str, **body: Any) -> httpx.Response:
    return await world.http.patch(f"{API}/reviews/{review_id}", json=body, headers=world.auth(who))


async def delete(world: World, who: Principal, review_id: str) -> httpx.Response:
    return await world.http.delete(f"{API}/reviews/{review_id}", headers=world.auth(who))


async def moderate(
    world: World, review_id: str, *, hidden: bool, reason: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"hidden": hidden}
    if reason is not None:
        body["reason"] = reason
    admin = world.principal(Role.ADMIN)
    return await world.http.patch(
        f"{API}/admin/reviews/{review_id}", json=body, headers=world.auth(admin)
    )


async def public_reviews(
    world: World, lodging_id: uuid.UUID | str, **params: Any
) -> dict[str, Any]:
    """The lodging's reviews as anyone sees them (no Authorization header)."""
    response = await world.http.get(f"{API}/lodgings/{lodging_id}/reviews", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def lodging_figures(world: World, lodging_id: uuid.UUID | None = None) -> tuple[Any, int]:
    """(rating, review_count) of the lodging's public detail, after every event is delivered."""
    await world.settle()
    response = await world.http.get(f"{API}/lodgings/{lodging_id or world.lodging_id}")
    assert response.status_code == 200, response.text
    detail = response.json()
    return detail["rating"], detail["review_count"]


def expected_figures(ratings: list[int]) -> tuple[float | None, int]:
    """What the lodging detail shows for these visible ratings."""
    if not ratings:
        return None, 0
    return round(sum(ratings) / len(ratings), 2), len(ratings)


# Rows, events, redelivery ------------------------------------------------------------------------


async def review_rows(world: World, lodging_id: uuid.UUID | None = None) -> list[Review]:
    async with world.platform.databases.sessions_for("review")() as session:
        statement = select(Review).where(Review.lodging_id == (lodging_id or world.lodging_id))
        return list((await session.scalars(statement)).all())


async def visible_ratings(world: World, lodging_id: uuid.UUID | None = None) -> list[int]:
    """The ratings that count, recomputed from the review rows: neither deleted nor hidden."""
    rows = await review_rows(world, lodging_id)
    return [row.rating for row in rows if row.deleted_at is None and not row.hidden]


async def stats_row(world: World, lodging_id: uuid.UUID | None = None) -> LodgingReviewStats | None:
    async with world.platform.databases.sessions_for("review")() as session:
        return await session.get(LodgingReviewStats, lodging_id or world.lodging_id)


async def lodging_row(world: World, lodging_id: uuid.UUID | None = None) -> Lodging:
    async with world.platform.databases.sessions_for("lodging")() as session:
        row = await session.get(Lodging, lodging_id or world.lodging_id)
        assert row is not None
        return row


async def rating_events(world: World, lodging_id: uuid.UUID | None = None) -> list[Event]:
    """Every ``review.lodging_rating_changed`` the review context emitted for the lodging."""
    async with world.platform.databases.sessions_for("review")() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.type == LodgingRatingChanged.TYPE,
                OutboxMessage.key == str(lodging_id or world.lodging_id),
            )
            .order_by(OutboxMessage.id)
        )
        return [row.to_event() for row in rows]


def consumer(world: World, name: str) -> Consumer:
    return next(c for c in world.platform.consumers if c.name == name)


def version_of(event: Event) -> int:
    version: int = event.payload["version"]
    return version


def problem_code(response: httpx.Response) -> str:
    return problem(response)

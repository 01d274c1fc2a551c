"""The lodging context served alone (ADR 0018): the reservation saga's lodging client over real
HTTP answers as the in-process one does (the same ``StayQuote``), raises the same errors, a
repeated hold takes nothing more, and the internal routes take only the reservation context's
service token (never a user's); the all-in-one app serves none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select

from haot.lodging.client import (
    ERRORS,
    HoldReleased,
    HttpLodgingClient,
    InProcessLodgingClient,
    InvalidStay,
    LodgingClient,
    SoldOut,
)
from haot.lodging.errors import RoomTypeNotFound
from haot.lodging.models import Night
from haot.lodging.schemas import CalendarUpdate, LodgingCreate, Region, RoomTypeCreate
from haot.platform.auth import Principal, Role
from haot.platform.clock import seoul_today, utcnow
from haot.platform.container import Platform
from haot.platform.errors import HaotError
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import Settings
from tests.support.server import context_alone, service_client


@pytest.fixture
async def lodging_service(settings: Settings) -> AsyncIterator[tuple[str, Platform]]:
    """``haot serve --context lodging``: the lodging context alone, on a loopback port."""
    async with context_alone(settings, "lodging") as served:
        yield served


def http_client(base: str, settings: Settings, caller: str = "reservation") -> ServiceClient:
    return service_client(base, settings, "lodging", ERRORS, caller=caller)


async def one_room(platform: Platform) -> uuid.UUID:
    """A room type of one room (for two guests), open for the next 30 nights but the tenth
    (closed); the twentieth and the next take stays of two nights or more."""
    lodgings = platform.services["lodging"]
    host = Principal(user_id=uuid.uuid4(), role=Role.HOST, issued_at=utcnow())
    lodging = await lodgings.create(
        host,
        LodgingCreate(
            name="Harbor Stay",
            address="1 Harbor-ro",
            region=Region(city="Busan", district="Haeundae"),
            latitude=35.16,
            longitude=129.16,
            max_guests=4,
        ),
    )
    room_type = await lodgings.add_room_type(
        host, lodging.id, RoomTypeCreate(name="Double", capacity=2, total_rooms=1)
    )
    today = seoul_today()
    for rule in (
        CalendarUpdate(start=today, end=today + timedelta(days=30), price=120_000),
        CalendarUpdate(
            start=today + timedelta(days=10), end=today + timedelta(days=11), closed=True
        ),
        CalendarUpdate(
            start=today + timedelta(days=20), end=today + timedelta(days=22), min_stay=2
        ),
    ):
        await lodgings.update_calendar(host, room_type.id, rule)
    return uuid.UUID(str(room_type.id))


async def held_and_sold(platform: Platform, room_type_id: uuid.UUID) -> dict[date, tuple[int, int]]:
    """The nights of the room type with a room held or sold."""
    async with platform.databases.sessions_for("lodging")() as session:
        nights = await session.scalars(select(Night).where(Night.room_type_id == room_type_id))
        return {n.date: (n.held, n.sold) for n in nights if n.held or n.sold}


async def outcome(call: Awaitable[object]) -> type[HaotError] | None:
    """The class of the error a call is refused with; None when it is not."""
    try:
        await call
    except HaotError as exc:
        return type(exc)
    return None


async def refusal(call: Awaitable[object]) -> type[HaotError]:
    refused = await outcome(call)
    assert refused is not None, "not refused"
    return refused


async def test_the_http_client_answers_as_the_in_process_one(
    lodging_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = lodging_service
    in_process: LodgingClient = platform.services["lodging.client"]
    assert isinstance(in_process, InProcessLodgingClient)
    service = http_client(base, settings)
    over_http: LodgingClient = HttpLodgingClient(service)
    room_type = await one_room(platform)
    check_in = seoul_today() + timedelta(days=3)
    check_out = check_in + timedelta(days=2)
    stay = (room_type, check_in, check_out, 2)
    try:
        quoted = await over_http.quote(*stay)
        assert quoted == await in_process.quote(*stay)
        assert quoted.nights == [(check_in, 120_000), (check_in + timedelta(days=1), 120_000)]
        assert quoted.subtotal == 240_000
        assert quoted.cancellation_policy  # the lodging's default tiers, rebuilt
        await over_http.check_available(*stay)  # passes

        reservation = uuid.uuid4()
        held = await over_http.hold(reservation, *stay)
        assert held == quoted
        again = await over_http.hold(reservation, *stay)  # a retry: the hold on record
        assert again == held
        assert await in_process.hold(reservation, *stay) == held
        taken = {check_in: (1, 0), check_in + timedelta(days=1): (1, 0)}
        assert await held_and_sold(platform, room_type) == taken

        # The last room is held: the same refusal either way.
        assert await refusal(over_http.check_available(*stay)) is SoldOut
        assert await refusal(in_process.check_available(*stay)) is SoldOut
        assert await refusal(over_http.hold(uuid.uuid4(), *stay)) is SoldOut
        assert await refusal(in_process.hold(uuid.uuid4(), *stay)) is SoldOut
        assert await held_and_sold(platform, room_type) == taken

        assert await over_http.confirm(reservation) is True
        assert await over_http.confirm(reservation) is False  # applied once
        assert await in_process.confirm(reservation) is False
        sold = dict.fromkeys(taken, (0, 1))
        assert await held_and_sold(platform, room_type) == sold

        assert await over_http.release(reservation) is True
        assert await over_http.release(reservation) is False  # applied once
        assert await in_process.release(reservation) is False
        assert await held_and_sold(platform, room_type) == {}
        # Given up: the reservation can neither hold nor confirm again.
        assert await refusal(over_http.hold(reservation, *stay)) is HoldReleased
        assert await refusal(in_process.hold(reservation, *stay)) is HoldReleased
        assert await refusal(over_http.confirm(reservation)) is HoldReleased
        assert await refusal(in_process.confirm(reservation)) is HoldReleased
        assert await held_and_sold(platform, room_type) == {}
        await over_http.check_available(*stay)  # free again
    finally:
        await service.aclose()


async def test_refusals_are_the_in_process_clients(
    lodging_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = lodging_service
    in_process: LodgingClient = platform.services["lodging.client"]
    service = http_client(base, settings)
    over_http: LodgingClient = HttpLodgingClient(service)
    room_type = await one_room(platform)
    today = seoul_today()
    soon = today + timedelta(days=2)
    refused = [
        # a party the room does not take
        ((room_type, soon, soon + timedelta(days=1), 3), InvalidStay),
        # a stay in the past
        ((room_type, today - timedelta(days=2), today - timedelta(days=1), 2), InvalidStay),
        # nights never opened
        ((room_type, today + timedelta(days=40), today + timedelta(days=42), 2), SoldOut),
        # a closed night
        ((room_type, today + timedelta(days=9), today + timedelta(days=11), 2), SoldOut),
        # shorter than the nights allow
        ((room_type, today + timedelta(days=20), today + timedelta(days=21), 2), InvalidStay),
        # no such room type
        ((uuid.uuid4(), soon, soon + timedelta(days=1), 2), RoomTypeNotFound),
    ]
    try:
        for stay, error in refused:
            for client in (over_http, in_process):
                assert await refusal(client.quote(*stay)) is error, (client, stay)
                assert await refusal(client.hold(uuid.uuid4(), *stay)) is error, (client, stay)
            # The early check answers alike too (silent where only ``hold`` can tell).
            assert await outcome(over_http.check_available(*stay)) is await outcome(
                in_process.check_available(*stay)
            )
        assert await refusal(over_http.check_available(*refused[3][0])) is SoldOut
        assert await refusal(over_http.check_available(*refused[4][0])) is InvalidStay
        # A reservation given up before its hold arrives is fenced off, over HTTP too.
        late = uuid.uuid4()
        assert await over_http.release(late) is False
        late_hold = over_http.hold(late, room_type, soon, soon + timedelta(days=1), 2)
        assert await refusal(late_hold) is HoldReleased
        assert await held_and_sold(platform, room_type) == {}
    finally:
        await service.aclose()


async def test_internal_routes_take_only_the_callers_they_name(
    lodging_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = lodging_service
    soon = seoul_today() + timedelta(days=2)
    stay = {"check_in": soon.isoformat(), "check_out": (soon + timedelta(days=1)).isoformat()}
    quote = f"/internal/v1/lodging/room-types/{uuid.uuid4()}/quote"
    hold = {"reservation_id": str(uuid.uuid4()), "room_type_id": str(uuid.uuid4()), **stay}
    admin = platform.signer.issue(uuid.uuid4(), Role.ADMIN).token
    point = ServiceTokens(settings.service_token_secret, caller="point").for_callee("lodging")
    reservation = ServiceTokens(settings.service_token_secret, caller="reservation")
    wrong_callee = reservation.for_callee("point")
    async with httpx.AsyncClient(base_url=base) as raw:
        assert (await raw.get(quote, params={**stay, "guests": 2})).status_code == 401
        assert (await raw.post("/internal/v1/lodging/holds", json=hold)).status_code == 401
        for token, status in ((admin, 401), (wrong_callee, 401), (point, 403)):
            headers = {"Authorization": f"Bearer {token}"}
            answer = await raw.get(quote, params={**stay, "guests": 2}, headers=headers)
            assert answer.status_code == status, answer.text
            answer = await raw.post(
                f"/internal/v1/lodging/holds/{uuid.uuid4()}/release", headers=headers
            )
            assert answer.status_code == status, answer.text
        own = {"Authorization": f"Bearer {reservation.for_callee('lodging')}"}
        answer = await raw.get(quote, params={**stay, "guests": 2}, headers=own)
        assert answer.status_code == 404, answer.text  # through the guard: no such room type
        # Inputs take nothing they do not know.
        answer = await raw.post(
            "/internal/v1/lodging/holds", json={**hold, "guests": 2, "rooms": 5}, headers=own
        )
        assert answer.status_code == 422, answer.text


async def test_the_all_in_one_app_serves_no_internal_route(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    token = ServiceTokens(settings.service_token_secret, caller="reservation").for_callee("lodging")
    answer = await app_client.post(
        f"/internal/v1/lodging/holds/{uuid.uuid4()}/release",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 404

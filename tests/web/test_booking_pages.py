"""The booking pages over HTTP (both engines): sign-in first, the quote's amount, "pay" books once
per page (its Idempotency-Key) and leads to the checkout, the return leads to the reservation."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.lodging.factories import create_listing, day, make_host, make_user
from tests.web.test_account_pages import HTML, csrf_of, sign_up


async def booking_query(client: httpx.AsyncClient) -> dict[str, Any]:
    host = await make_host(client)
    listing = await create_listing(client, host, price=90_000)
    return {
        "room_type_id": listing.room_type["id"],
        "check_in": day(3).isoformat(),
        "check_out": day(5).isoformat(),
        "guests": 2,
    }


async def pay_form(client: httpx.AsyncClient, stay: dict[str, Any]) -> dict[str, str]:
    """What pressing "pay" on the booking page of ``stay`` posts (its CSRF token and key)."""
    page = await client.get("/book", params=stay, headers=HTML)
    assert page.status_code == 200, page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    return {k: str(v) for k, v in stay.items()} | {
        "csrf": csrf_of(page.text),
        "idempotency_key": key.group(1),
        "action": "pay",
    }


async def test_the_booking_page_asks_to_sign_in_first(app_client: httpx.AsyncClient) -> None:
    stay = await booking_query(app_client)
    app_client.cookies.clear()
    page = await app_client.get("/book", params=stay, headers=HTML)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=%2Fbook%3Froom_type_id%3D")


async def test_pay_books_once_and_leads_to_the_checkout(app_client: httpx.AsyncClient) -> None:
    stay = await booking_query(app_client)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/book", params=stay, headers=HTML)
    assert page.status_code == 200, page.text
    assert re.search(r'data-testid="amount" data-value="180000"', page.text)
    assert '<select id="user_coupon_id" name="user_coupon_id">' in page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    form = {k: str(v) for k, v in stay.items()} | {
        "csrf": csrf_of(page.text),
        "idempotency_key": key.group(1),
        "points": "",
        "user_coupon_id": "",
        "action": "pay",
    }
    first = await app_client.post("/book", data=form, headers=HTML)
    again = await app_client.post("/book", data=form, headers=HTML)  # pressed twice
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    checkout = re.fullmatch(r".*/payments/(pay_\w+)/checkout", first.headers["location"])
    assert checkout, first.headers["location"]

    mine = await app_client.get("/api/v1/reservations", headers={"Accept": "application/json"})
    assert mine.status_code == 401  # the API wants its bearer token; the pages use the cookie
    back = await app_client.get(f"/payments/{checkout.group(1)}/return", headers=HTML)
    assert back.status_code == 303
    reservation = await app_client.get(back.headers["location"], headers=HTML)
    assert reservation.status_code == 200, reservation.text
    assert 'data-testid="reservation-status" data-status="PENDING"' in reservation.text
    assert 'hx-get="/reservations/' in reservation.text  # follows the payment until final


async def test_a_refused_quote_is_shown_on_the_page(app_client: httpx.AsyncClient) -> None:
    stay = await booking_query(app_client)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    too_many = await app_client.get("/book", params=stay | {"points": 10_000}, headers=HTML)
    assert too_many.status_code in (409, 422), too_many.text
    assert 'class="error"' in too_many.text
    assert 'data-testid="pay"' not in too_many.text


async def test_a_booking_link_without_dates_asks_for_them(app_client: httpx.AsyncClient) -> None:
    stay = await booking_query(app_client)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get(
        "/book", params={"room_type_id": stay["room_type_id"]}, headers=HTML
    )
    assert page.status_code == 422
    assert "먼저 날짜와 인원을 선택해 주세요" in page.text
    assert 'data-testid="pay"' not in page.text


async def test_the_reservation_page_shows_the_refund_before_cancelling(
    app_client: httpx.AsyncClient,
) -> None:
    stay = await booking_query(app_client)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    form = await pay_form(app_client, stay)
    checkout = (await app_client.post("/book", data=form, headers=HTML)).headers["location"]
    payment_id = checkout.rsplit("/", 2)[-2]
    reservation_path = (
        await app_client.get(f"/payments/{payment_id}/return", headers=HTML)
    ).headers["location"]
    unpaid = await app_client.get(reservation_path, headers=HTML)
    assert 'data-testid="cancel"' in unpaid.text
    assert "₩0" in unpaid.text  # unpaid: nothing to refund, and the page says so first

    cancelled = await app_client.post(
        f"{reservation_path}/cancel", data={"csrf": csrf_of(unpaid.text)}, headers=HTML
    )
    assert cancelled.status_code == 303
    after = await app_client.get(reservation_path, headers=HTML)
    assert 'data-status="CANCELLED"' in after.text
    assert 'data-testid="refund" data-value="0"' in after.text
    assert 'data-testid="cancel"' not in after.text


async def test_my_reservations_lists_mine_with_their_status(app_client: httpx.AsyncClient) -> None:
    stay = await booking_query(app_client)
    app_client.cookies.clear()
    assert (await app_client.get("/reservations", headers=HTML)).status_code == 303
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    empty = await app_client.get("/reservations", headers=HTML)
    assert empty.status_code == 200
    assert 'data-testid="reservation"' not in empty.text
    form = await pay_form(app_client, stay)
    assert (await app_client.post("/book", data=form, headers=HTML)).status_code == 303
    mine = await app_client.get("/reservations", headers=HTML)
    rows = re.findall(r'<li class="card" data-testid="reservation" data-status="(\w+)">', mine.text)
    assert rows == ["PENDING"]
    assert re.search(r'href="/reservations/[0-9a-f-]{36}"', mine.text)


async def test_after_a_refused_payment_the_page_books_under_a_new_key(
    app_client: httpx.AsyncClient,
) -> None:
    """A refusal ends that attempt: the page shown with it carries a new Idempotency-Key, so
    pressing "pay" again is a booking of its own and not the refused one answered again."""
    host = await make_host(app_client)
    listing = await create_listing(app_client, host, price=90_000, total_rooms=1)
    stay = {
        "room_type_id": listing.room_type["id"],
        "check_in": day(3).isoformat(),
        "check_out": day(5).isoformat(),
        "guests": 2,
    }
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    form = await pay_form(app_client, stay)  # the page is open; then someone else books it
    other = await make_user(app_client)
    taken = await app_client.post(
        "/api/v1/reservations",
        json=stay,
        headers=other.headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert taken.status_code == 201, taken.text

    refused = await app_client.post("/book", data=form, headers=HTML)
    assert refused.status_code == 409, refused.text
    assert 'class="error"' in refused.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', refused.text)
    assert key
    assert key.group(1) != form["idempotency_key"]

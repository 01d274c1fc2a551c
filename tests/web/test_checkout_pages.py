"""The checkout page for a real PortOne (the browser SDK with the store id and channel key from
settings) and the return page, which has the server complete the payment (re-query) before
showing the reservation. The built-in fake stands in for PortOne's servers here."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from haot.app import create_app
from haot.platform.settings import Settings
from tests.web.test_account_pages import HTML, sign_up
from tests.web.test_booking_pages import booking_query, pay_form

STORE_ID = "store-00000000-0000-0000-0000-000000000001"
CHANNEL_KEY = "channel-key-00000000-0000-0000-0000-000000000002"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"portone_store_id": STORE_ID, "portone_channel_key": CHANNEL_KEY}
    )
    app = create_app(configured)
    async with LifespanManager(app, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def return_url_of(checkout: httpx.Response) -> str:
    """Where the checkout the app sent the browser to returns it (the app builds it from its
    public base URL)."""
    return parse_qs(urlsplit(checkout.headers["location"]).query)["return_url"][0]


async def booked(client: httpx.AsyncClient) -> str:
    """A new guest's booking from the booking page; its payment id."""
    stay = await booking_query(client)
    await sign_up(client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    created = await client.post("/book", data=await pay_form(client, stay), headers=HTML)
    assert created.status_code == 303, created.text
    payment = re.fullmatch(r".*/payments/(pay_\w+)/checkout", created.headers["location"])
    assert payment
    return payment.group(1)


async def status_becomes(client: httpx.AsyncClient, reservation: str, wanted: str) -> bool:
    for _ in range(100):
        page = await client.get(f"{reservation}/status", headers=HTML)
        if f'data-testid="reservation-status" data-status="{wanted}"' in page.text:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_checkout_page_opens_portone_with_the_payment_and_settings(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    payment_id = await booked(client)
    page = await client.get(f"/checkout/{payment_id}", headers=HTML)
    assert page.status_code == 200, page.text
    button = re.search(r'<button type="button" id="portone-pay"[^>]*>', page.text, re.S)
    assert button, page.text
    attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', button.group(0)))
    assert attributes["store-id"] == STORE_ID
    assert attributes["channel-key"] == CHANNEL_KEY
    assert attributes["payment-id"] == payment_id
    assert attributes["amount"] == "180000"
    # Where PortOne sends the guest back is built by the server, whatever the query says.
    assert attributes["return-url"] == (f"{settings.public_base_url}/payments/{payment_id}/return")
    hijacked = await client.get(
        f"/checkout/{payment_id}", params={"return_url": "https://evil.example/"}, headers=HTML
    )
    assert f'data-return-url="{attributes["return-url"]}"' in hijacked.text
    assert f'<script src="{settings.portone_browser_sdk_url}" defer></script>' in page.text


async def test_only_the_payer_sees_the_checkout_page(client: httpx.AsyncClient) -> None:
    payment_id = await booked(client)
    client.cookies.clear()
    anonymous = await client.get(f"/checkout/{payment_id}", headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=%2Fcheckout%2F")
    await sign_up(client, f"other-{uuid.uuid4().hex[:8]}@example.com")
    other = await client.get(f"/checkout/{payment_id}", headers=HTML)
    assert other.status_code == 404
    assert "text/html" in other.headers["content-type"]


async def test_the_return_page_completes_the_payment_without_waiting_for_the_webhook(
    client: httpx.AsyncClient,
) -> None:
    payment_id = await booked(client)
    # No webhook reaches the app: only the return page's completion can confirm the booking.
    assert (await client.post("/fake-portone/_faults", json={"drop": True})).status_code == 200
    # The guest goes to pay: the amount is pre-registered at PortOne, then its window opens.
    went = await client.get(f"/payments/{payment_id}/checkout")
    assert went.status_code == 303
    approved = await client.post(
        f"/fake-portone/checkout/{payment_id}/approve",
        data={"return_url": return_url_of(went)},
    )
    assert approved.status_code == 303, approved.text
    back = await client.get(f"/payments/{payment_id}/return", headers=HTML)
    assert back.status_code == 303
    # Paid now; the reservation confirms when its consumer takes the payment's event.
    assert await status_becomes(client, back.headers["location"], "CONFIRMED")

    # Paid: the checkout page has nothing left to pay and shows the reservation instead.
    again = await client.get(f"/checkout/{payment_id}", headers=HTML)
    assert again.status_code == 303
    assert again.headers["location"] == back.headers["location"]


async def test_a_declined_payment_is_not_completed_on_return(client: httpx.AsyncClient) -> None:
    payment_id = await booked(client)
    back = await client.get(
        f"/payments/{payment_id}/return",
        params={"paymentId": payment_id, "code": "FAILURE_TYPE_PG", "message": "declined"},
        headers=HTML,
    )
    assert back.status_code == 303
    reservation = await client.get(back.headers["location"], headers=HTML)
    assert 'data-status="PENDING"' in reservation.text  # still payable until the hold lapses

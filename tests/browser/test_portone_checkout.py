"""The checkout page for a real PortOne, in a real browser: it calls ``PortOne.requestPayment``
with the payment and the store id and channel key from settings, then the return page completes
the payment and the reservation is CONFIRMED. PortOne's CDN is out of reach here, so the browser
is served a stand-in for its SDK that does what PortOne's window does when the guest pays:
approve the payment at the gateway (the built-in fake stands in for PortOne's servers)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, expect

from haot.platform.container import Platform
from haot.platform.settings import Settings
from tests.browser.conftest import listing_on, look, sign_up_on_the_page
from tests.lodging.factories import day
from tests.support.server import real_server

STORE_ID = "store-4f1b3c2a-0000-4000-8000-000000000001"
CHANNEL_KEY = "channel-key-9d8e7f6a-0000-4000-8000-000000000002"

APPROVING_SDK = """
window.PortOne = {
  requestPayment: async (request) => {
    await window.recordPortOneRequest(request);
    const approve = "/fake-portone/checkout/" + encodeURIComponent(request.paymentId) + "/approve";
    await fetch(approve, {
      method: "POST",
      body: new URLSearchParams({ return_url: request.redirectUrl }),
      redirect: "manual",
    });
    return { paymentId: request.paymentId, transactionType: "PAYMENT" };
  },
};
"""

REFUSING_SDK = """
window.PortOne = {
  requestPayment: async (request) => ({
    paymentId: request.paymentId, code: "FAILURE_TYPE_PG", message: "카드 한도를 넘었습니다",
  }),
};
"""


@pytest.fixture
async def portone_site(settings: Settings) -> AsyncIterator[tuple[str, Platform, Settings]]:
    configured = settings.model_copy(
        update={"portone_store_id": STORE_ID, "portone_channel_key": CHANNEL_KEY}
    )
    async with real_server(configured, fake_portone=True) as (base, platform):
        yield base, platform, configured


async def booked_payment(page: Page, base: str) -> str:
    """A new guest books a stay from the booking page; the payment's id."""
    listing = await listing_on(base, price=70_000, name="Pine Cabin")
    await page.goto(base + "/signup")
    await sign_up_on_the_page(page, "Han Guest")
    await page.wait_for_url(base + "/")
    stay = f"check_in={day(9)}&check_out={day(10)}&guests=2"
    await page.goto(f"{base}/book?room_type_id={listing.room_type['id']}&{stay}")
    await page.locator("[data-testid=pay]").click()
    await page.wait_for_url("**/fake-portone/checkout/**")
    found = re.search(r"/checkout/(pay_\w+)", urlsplit(page.url).path)
    assert found, page.url
    return found.group(1)


async def serve_sdk(page: Page, settings: Settings, script: str) -> None:
    async def fulfil(route: Route) -> None:
        await route.fulfill(body=script, content_type="text/javascript")

    await page.route(settings.portone_browser_sdk_url, fulfil)


async def test_paying_through_the_portone_sdk_confirms_the_reservation(
    browser: Browser,
    portone_site: tuple[str, Platform, Settings],
    request: pytest.FixtureRequest,
) -> None:
    base, _, settings = portone_site
    page = await browser.new_page(locale="ko-KR")
    payment_id = await booked_payment(page, base)
    asked: list[dict[str, Any]] = []

    def record(request: dict[str, Any]) -> None:
        asked.append(request)

    await page.expose_function("recordPortOneRequest", record)
    await serve_sdk(page, settings, APPROVING_SDK)

    await page.goto(f"{base}/checkout/{payment_id}")
    await expect(page.locator("[data-testid=amount]")).to_have_attribute("data-value", "70000")
    await look(page, request.node.name, "checkout")
    await page.locator("[data-testid=portone-pay]").click()

    await page.wait_for_url("**/reservations/**")
    status = page.locator("[data-testid=reservation-status]")
    await expect(status).to_have_attribute("data-status", "CONFIRMED", timeout=15_000)
    assert len(asked) == 1
    assert asked[0] == asked[0] | {
        "storeId": STORE_ID,
        "channelKey": CHANNEL_KEY,
        "paymentId": payment_id,
        "totalAmount": 70_000,
        "currency": "CURRENCY_KRW",
        "payMethod": "CARD",
        "redirectUrl": f"{base}/payments/{payment_id}/return",
    }
    await page.close()


async def test_a_refused_payment_is_told_on_the_checkout_page(
    browser: Browser, portone_site: tuple[str, Platform, Settings]
) -> None:
    base, _, settings = portone_site
    page = await browser.new_page(locale="ko-KR")
    payment_id = await booked_payment(page, base)
    await serve_sdk(page, settings, REFUSING_SDK)
    await page.goto(f"{base}/checkout/{payment_id}")
    await page.locator("[data-testid=portone-pay]").click()
    error = page.locator("[data-testid=payment-error]")
    await expect(error).to_have_text("카드 한도를 넘었습니다")
    await expect(page.locator("[data-testid=portone-pay]")).to_be_enabled()  # may try again
    assert page.url == f"{base}/checkout/{payment_id}"
    await page.close()


async def test_without_the_sdk_the_page_says_why_it_cannot_pay(
    browser: Browser, portone_site: tuple[str, Platform, Settings]
) -> None:
    base, _, settings = portone_site
    page = await browser.new_page(locale="en-US")
    payment_id = await booked_payment(page, base)

    async def unreachable(route: Route) -> None:
        await route.abort()

    await page.route(settings.portone_browser_sdk_url, unreachable)
    await page.goto(f"{base}/checkout/{payment_id}")
    await expect(page.locator("[data-testid=payment-error]")).to_contain_text("could not be loaded")
    await expect(page.locator("[data-testid=portone-pay]")).to_be_hidden()
    await page.close()

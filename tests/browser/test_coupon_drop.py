"""A claim in a coupon drop from the page, in a real browser: the countdown runs to the opening,
the claim is posted in place (htmx) and its outcome arrives over the API's server-sent events,
without a reload; then the coupon is on my coupons page."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Browser, Request, expect

from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from tests.browser.conftest import look, sign_up_on_the_page


async def scheduled_drop(base: str, platform: Platform, *, opens_in: timedelta) -> str:
    admin = {"Authorization": f"Bearer {platform.signer.issue(uuid.uuid4(), Role.ADMIN).token}"}
    now = utcnow()
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=10) as api:
        coupon = await api.post(
            "/api/v1/admin/coupons",
            json={
                "name": "Flash drop",
                "discount_type": "FIXED",
                "discount_value": 20_000,
                "min_order_amount": 100_000,
                "valid_from": (now - timedelta(days=1)).isoformat(),
                "valid_to": (now + timedelta(days=30)).isoformat(),
            },
        )
        assert coupon.status_code == 201, coupon.text
        event = await api.post(
            "/api/v1/admin/coupon-events",
            json={
                "coupon_id": coupon.json()["id"],
                "starts_at": (now + opens_in).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "quantity": 100,
            },
        )
        assert event.status_code == 201, event.text
        return str(event.json()["id"])


async def test_claim_in_a_drop_from_the_page(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, platform = site
    event_id = await scheduled_drop(base, platform, opens_in=timedelta(seconds=4))
    page = await browser.new_page(locale="ko-KR")
    streams: list[Request] = []
    page.on(
        "request",
        lambda asked: streams.append(asked) if "/coupon-claims/stream" in asked.url else None,
    )
    await page.goto(base + "/signup?next=/coupon-events")
    await sign_up_on_the_page(page, "Lee Guest")
    await page.wait_for_url(base + "/coupon-events")

    event = page.locator(f"#event-{event_id}")
    await expect(event).to_have_attribute("data-testid", "coupon-event")
    await expect(event.locator(".clock")).to_be_visible()
    await look(page, request.node.name, "coupon-events")
    # Counted down to the opening on the server's clock: a claim now is in time.
    await expect(event.locator(".open-now")).to_be_visible(timeout=10_000)
    await expect(event.locator(".until")).to_be_hidden()

    await event.locator("[data-testid=claim]").click()
    status = event.locator("[data-testid=claim-status]")
    await expect(status).to_have_attribute("data-status", "ISSUED", timeout=15_000)
    assert page.url == base + "/coupon-events"  # no reload, no redirect
    assert streams, "the outcome was not followed over the event stream"
    await look(page, request.node.name, "claimed")

    await page.goto(base + "/coupons")
    coupon = page.locator("[data-testid=coupon]")
    await expect(coupon).to_have_attribute("data-status", "ISSUED")
    await expect(coupon).to_contain_text("₩20,000")
    await look(page, request.node.name, "coupons")
    await page.goto(base + "/points")
    await expect(page.locator("[data-testid=point-balance]")).to_have_attribute("data-value", "0")
    await look(page, request.node.name, "points")
    await page.goto(base + "/account")
    await look(page, request.node.name, "account")
    await page.close()

"""The guest's walk in a real browser, on the built-in fake PortOne: sign up, search, the lodging,
the booking page with a coupon of mine and some of my points taken off the amount, pay on the
checkout page, come back to the reservation page and see it CONFIRMED without reloading; then
cancel it, shown the policy's refund first."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from tests.browser.conftest import listing_on, look, sign_up_on_the_page
from tests.lodging.factories import day


async def give_coupon_and_points(base: str, platform: Platform, page: Page) -> None:
    """An admin issues the signed-in guest a ₩20,000 coupon and grants 5,000 points."""
    session = next(c for c in await page.context.cookies() if c["name"] == "haot_session")
    admin = {"Authorization": f"Bearer {platform.signer.issue(uuid.uuid4(), Role.ADMIN).token}"}
    now = utcnow()
    async with httpx.AsyncClient(base_url=base + "/api/v1", timeout=10) as api:
        me = await api.get("/users/me", headers={"Authorization": f"Bearer {session['value']}"})
        guest = me.json()["id"]
        coupon = await api.post(
            "/admin/coupons",
            headers=admin,
            json={
                "name": "Welcome 20,000",
                "discount_type": "FIXED",
                "discount_value": 20_000,
                "min_order_amount": 100_000,
                "valid_from": (now - timedelta(days=1)).isoformat(),
                "valid_to": (now + timedelta(days=30)).isoformat(),
            },
        )
        issued = await api.post(
            f"/admin/coupons/{coupon.json()['id']}/issue", headers=admin, json={"user_ids": [guest]}
        )
        assert issued.status_code == 201, issued.text
        granted = await api.post(
            "/admin/points/grants",
            headers=admin,
            json={"user_id": guest, "amount": 5_000, "reason": "welcome"},
        )
        assert granted.status_code == 201, granted.text


async def test_book_with_a_coupon_and_points_and_pay_on_the_checkout_page(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, platform = site
    listing = await listing_on(base, price=110_000, name="Stone House")
    check_in, check_out = day(5), day(7)
    page = await browser.new_page(locale="ko-KR")
    await page.goto(base + "/signup")
    await sign_up_on_the_page(page, "Choi Guest")
    await page.wait_for_url(base + "/")
    await give_coupon_and_points(base, platform, page)

    query = f"region=Seoul&check_in={check_in}&check_out={check_out}&guests=2"
    await page.goto(f"{base}/search?{query}")
    await page.locator("[data-testid=lodging-card] a", has_text="Stone House").click()
    await page.locator("[data-testid=book]").first.click()
    await page.wait_for_url("**/book?**")
    amount = page.locator("[data-testid=amount]")
    await expect(amount).to_have_attribute("data-value", "220000")
    await page.locator("select[name=user_coupon_id]").select_option(label="Welcome 20,000")
    await page.locator("input[name=points]").fill("5000")
    await page.get_by_role("button", name="금액 다시 계산").click()
    await expect(amount).to_have_attribute("data-value", "195000")  # 220,000 - 20,000 - 5,000
    await look(page, request.node.name, "book")

    await page.locator("[data-testid=pay]").click()
    await page.wait_for_url("**/fake-portone/checkout/**")
    await page.locator("#approve").click()

    await page.wait_for_url("**/reservations/**")
    status = page.locator("[data-testid=reservation-status]")
    await expect(status).to_have_attribute("data-status", "CONFIRMED", timeout=15_000)
    await look(page, request.node.name, "reservation")

    # Five days before check-in the lodging's policy refunds half; the page says so first.
    await expect(page.get_by_text("₩97,500")).to_be_visible()
    await page.locator("[data-testid=cancel]").click()
    await page.wait_for_url("**/reservations/*")
    await expect(status).to_have_attribute("data-status", "CANCELLED")
    await expect(page.locator("[data-testid=refund]")).to_have_attribute("data-value", "97500")
    await look(page, request.node.name, "cancelled")
    assert listing.room_type["id"]
    await page.close()

"""The guest's walk in a real browser, on the built-in fake PortOne: sign up, search, the lodging,
the booking page with its amount, pay on the checkout page, come back to the reservation page and
see it CONFIRMED without reloading; then cancel it, shown the policy's refund first."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from haot.platform.container import Platform
from tests.browser.conftest import listing_on, look, sign_up_on_the_page
from tests.lodging.factories import day


async def test_book_and_pay_on_the_checkout_page(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, _ = site
    listing = await listing_on(base, price=110_000, name="Stone House")
    check_in, check_out = day(5), day(7)
    page = await browser.new_page(locale="ko-KR")
    await page.goto(base + "/signup")
    await sign_up_on_the_page(page, "Choi Guest")
    await page.wait_for_url(base + "/")

    query = f"region=Seoul&check_in={check_in}&check_out={check_out}&guests=2"
    await page.goto(f"{base}/search?{query}")
    await page.locator("[data-testid=lodging-card] a", has_text="Stone House").click()
    await page.locator("[data-testid=book]").first.click()
    await page.wait_for_url("**/book?**")
    amount = page.locator("[data-testid=amount]")
    await expect(amount).to_have_attribute("data-value", "220000")
    await expect(page.locator("select[name=user_coupon_id]")).to_be_visible()
    await expect(page.locator("input[name=points]")).to_be_visible()
    await look(page, request.node.name, "book")

    await page.locator("[data-testid=pay]").click()
    await page.wait_for_url("**/fake-portone/checkout/**")
    await page.locator("#approve").click()

    await page.wait_for_url("**/reservations/**")
    status = page.locator("[data-testid=reservation-status]")
    await expect(status).to_have_attribute("data-status", "CONFIRMED", timeout=15_000)
    await look(page, request.node.name, "reservation")

    # Five days before check-in the lodging's policy refunds half; the page says so first.
    await expect(page.get_by_text("₩110,000")).to_be_visible()
    await page.locator("[data-testid=cancel]").click()
    await page.wait_for_url("**/reservations/*")
    await expect(status).to_have_attribute("data-status", "CANCELLED")
    await expect(page.locator("[data-testid=refund]")).to_have_attribute("data-value", "110000")
    await look(page, request.node.name, "cancelled")
    assert listing.room_type["id"]
    await page.close()

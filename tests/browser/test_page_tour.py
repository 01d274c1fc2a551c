"""The pages no walk photographs otherwise: my reservations, the error pages (404, and 403 for
another role's page), and the guest's pages in English, each at a phone's and a desktop's width
with its axe-core check."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from haot.platform.container import Platform
from tests.browser.conftest import listing_on, look, sign_up_on_the_page
from tests.lodging.factories import day


async def test_every_other_page_at_both_widths(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, _ = site
    test = request.node.name
    listing = await listing_on(base, price=95_000, name="Garden Loft")
    page = await browser.new_page(locale="en-US")  # the other language, from the browser's own
    await page.goto(base + "/signup?next=/reservations")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await sign_up_on_the_page(page, "Park Guest")
    await page.wait_for_url(base + "/reservations")
    await look(page, test, "reservations-empty")

    stay = f"check_in={day(12)}&check_out={day(13)}&guests=1"
    await page.goto(f"{base}/book?room_type_id={listing.room_type['id']}&{stay}")
    await look(page, test, "book-en")
    await page.locator("[data-testid=pay]").click()
    await page.wait_for_url("**/fake-portone/checkout/**")
    await page.goto(base + "/reservations")
    row = page.locator("[data-testid=reservation]")
    await expect(row).to_have_attribute("data-status", "PENDING")
    await look(page, test, "reservations")
    await row.get_by_role("link").click()
    await expect(page.locator("[data-testid=reservation-status]")).to_have_attribute(
        "data-status", "PENDING"
    )
    await look(page, test, "reservation-pending")

    missing = await page.goto(base + "/lodgings/00000000-0000-0000-0000-000000000000")
    assert missing is not None
    assert missing.status == 404
    await expect(page.get_by_role("heading", name="This page does not exist")).to_be_visible()
    await look(page, test, "not-found")
    forbidden = await page.goto(base + "/admin")
    assert forbidden is not None
    assert forbidden.status == 403
    await expect(
        page.get_by_role("heading", name="This page is not for your account")
    ).to_be_visible()
    await look(page, test, "forbidden")
    for path, name in (("/coupon-events", "coupon-events-empty"), ("/coupons", "coupons-empty")):
        await page.goto(base + path)
        await look(page, test, name)
    await page.close()

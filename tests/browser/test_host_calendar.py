"""The host's walk in a real browser: log in, find the lodging and its room type, open a range of
nights on the calendar page at a weekday and a weekend price, close a night and reopen it; then a
guest, in a browser of their own, searches those dates and sees the total those prices make. Every
host page is looked at (screenshots, axe-core)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Browser, expect

from haot.platform.container import Platform
from tests.browser.conftest import look
from tests.lodging.factories import (
    PASSWORD,
    create_lodging,
    create_room_type,
    day,
    make_host,
    next_weekday,
)

WEEKDAY_PRICE, WEEKEND_PRICE = 87_300, 131_700


async def test_a_host_opens_nights_that_guests_then_find(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, _ = site
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        host = await make_host(api)
        lodging = await create_lodging(
            api, host, name="Moonlight Cabin", region={"city": "Jeju", "district": "Aewol"}
        )
        room = await create_room_type(api, host, lodging["id"], name="Garden Room", total_rooms=2)
    calendar = f"{base}/host/room-types/{room['id']}/calendar?lodging={lodging['id']}"
    test = request.node.name
    monday = next_weekday(day(10), 0)
    thursday, saturday = monday + timedelta(days=3), monday + timedelta(days=5)
    tuesday = monday + timedelta(days=1)

    hosting = await browser.new_context(locale="ko-KR")
    page = await hosting.new_page()
    await page.goto(base + "/login?next=/host/lodgings")
    await page.locator("input[name=email]").fill(host.email)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("[data-testid=submit]").click()
    await page.wait_for_url(base + "/host/lodgings")
    await expect(page.locator("[data-testid=host-lodging]")).to_have_count(1)
    await look(page, test, "lodgings")

    await page.locator("[data-testid=new-lodging]").click()
    await page.wait_for_url("**/host/lodgings/new")
    await look(page, test, "new-lodging")

    await page.goto(base + "/host/lodgings")
    await page.locator("[data-testid=host-lodging] a", has_text="Moonlight Cabin").click()
    await page.wait_for_url(f"**/host/lodgings/{lodging['id']}")
    await look(page, test, "lodging")

    await page.goto(f"{base}/host/lodgings/{lodging['id']}/delete")
    await expect(page.locator("[data-testid=confirm-delete]")).to_be_visible()
    await look(page, test, "delete-lodging")
    await page.go_back()

    await page.locator("[data-testid=calendar-link]").click()
    await page.wait_for_url("**/calendar?lodging=*")
    await expect(page.locator("[data-testid=calendar-night]")).to_have_count(0)
    form = page.locator("form[data-testid=open-range]")
    await form.locator("input[name=start]").fill(monday.isoformat())
    await form.locator("input[name=end]").fill((monday + timedelta(days=7)).isoformat())
    await form.locator("input[name=price]").fill(str(WEEKDAY_PRICE))
    await form.locator("input[name=weekend_price]").fill(str(WEEKEND_PRICE))
    await form.locator("input[name=closed][value=false]").check()
    await form.locator("[data-testid=apply]").click()
    await page.wait_for_url(f"**/calendar?month={monday:%Y-%m}*")

    friday = thursday + timedelta(days=1)
    for night, price in ((thursday, WEEKDAY_PRICE), (friday, WEEKEND_PRICE)):
        await page.goto(f"{calendar}&month={night:%Y-%m}")
        shown = page.locator(f"[data-testid=calendar-night][data-date='{night}']")
        await expect(shown).to_have_attribute("data-value", str(price))
        await expect(shown).to_have_attribute("data-status", "OPEN")
    await look(page, test, "calendar")

    # One night closed from its own button, then reopened.
    await page.goto(f"{calendar}&month={tuesday:%Y-%m}")
    tuesday_night = page.locator(f"[data-testid=calendar-night][data-date='{tuesday}']")
    await tuesday_night.locator("[data-testid=close-night]").click()
    await expect(tuesday_night).to_have_attribute("data-status", "CLOSED")
    await look(page, test, "calendar-closed")
    await tuesday_night.locator("[data-testid=reopen-night]").click()
    await expect(tuesday_night).to_have_attribute("data-status", "OPEN")

    # A refused range: the error beside its field.
    form = page.locator("form[data-testid=open-range]")
    await form.locator("input[name=start]").fill(saturday.isoformat())
    await form.locator("input[name=end]").fill(thursday.isoformat())
    await form.locator("[data-testid=apply]").click()
    await expect(page.locator("#end-error")).to_be_visible()
    await look(page, test, "calendar-refused")

    await page.goto(base + "/host/reservations")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await look(page, test, "reservations")
    await hosting.close()

    guesting = await browser.new_context(locale="ko-KR")
    guest = await guesting.new_page()
    query = f"region=Aewol&check_in={thursday}&check_out={saturday}&guests=2"
    await guest.goto(f"{base}/search?{query}")
    card = guest.locator("[data-testid=lodging-card]", has_text="Moonlight Cabin")
    await expect(card.locator("[data-testid=total-price]")).to_have_attribute(
        "data-value", str(WEEKDAY_PRICE + WEEKEND_PRICE)
    )
    await guesting.close()

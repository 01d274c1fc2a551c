"""A guest finds a stay in a real browser: home, the search form, results with the stay's total,
the lodging page with its rooms; in Korean, then in English through the switch."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from haot.platform.container import Platform
from tests.browser.conftest import listing_on, look, sign_up_on_the_page
from tests.lodging.factories import day


async def test_search_to_lodging_page(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, _ = site
    listing = await listing_on(base, price=130_000, name="Hanok by the River")
    check_in, check_out = day(4), day(6)

    page = await browser.new_page(locale="ko-KR")  # a guest whose browser speaks Korean
    await page.goto(base + "/")
    await expect(page.locator("html")).to_have_attribute("lang", "ko")
    await look(page, request.node.name, "home")
    form = page.locator("form[data-testid=search]")
    await form.locator("input[name=region]").fill("Seoul")
    await form.locator("input[name=check_in]").fill(check_in.isoformat())
    await form.locator("input[name=check_out]").fill(check_out.isoformat())
    await form.locator("input[name=guests]").fill("2")
    await form.locator("button[type=submit]").click()

    await page.wait_for_url("**/search?**")
    card = page.locator("[data-testid=lodging-card]")
    await expect(card).to_have_count(1)
    await expect(card.locator("[data-testid=total-price]")).to_have_attribute(
        "data-value", "260000"
    )
    await look(page, request.node.name, "results")

    await card.get_by_role("link", name="Hanok by the River").click()
    await page.wait_for_url(f"**/lodgings/{listing.lodging['id']}?*")
    room = page.locator("[data-testid=room-type]")
    await expect(room).to_have_count(1)
    book = room.locator("[data-testid=book]")
    href = await book.get_attribute("href")
    assert href is not None
    assert f"room_type_id={listing.room_type['id']}" in href
    assert f"check_in={check_in}" in href
    await look(page, request.node.name, "lodging")

    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", name="Rooms")).to_be_visible()
    await page.close()


async def test_keyboard_alone_reaches_and_submits_the_search(
    browser: Browser, site: tuple[str, Platform]
) -> None:
    base, _ = site
    page = await browser.new_page(locale="ko-KR")  # a guest whose browser speaks Korean
    await page.goto(base + "/")
    await page.keyboard.press("Tab")  # the skip link comes first
    await expect(page.get_by_role("link", name="본문으로 건너뛰기")).to_be_focused()
    await page.locator("input[name=region]").focus()
    await page.keyboard.type("Busan")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/search?**region=Busan**")
    await expect(page.get_by_role("status")).to_be_visible()
    await page.close()


async def test_sign_up_and_log_out_in_the_browser(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, _ = site
    page = await browser.new_page(locale="ko-KR")
    await page.goto(base + "/signup")
    await look(page, request.node.name, "signup")
    await sign_up_on_the_page(page, "Park Guest")
    await page.wait_for_url(base + "/")
    await expect(page.locator("[data-testid=logout]")).to_be_visible()
    await expect(page.get_by_text("Park Guest")).to_be_visible()
    await page.locator("[data-testid=logout]").click()
    await page.wait_for_url(base + "/")
    await expect(page.locator("[data-testid=logout]")).to_have_count(0)
    await page.get_by_role("link", name="로그인").click()
    await look(page, request.node.name, "login")
    await page.close()

"""A guest reviews a completed stay in a real browser, and the lodging's page then shows the
review and the lodging's rating; the host answers it on their reviews page, and an admin hides it.
The review window runs on Seoul's calendar: the review context's "today" is moved to the day after
check-out."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from haot.platform.auth import Role
from haot.platform.container import Platform
from tests.browser.conftest import look, sign_up_on_the_page
from tests.browser.test_admin_events import admin_account
from tests.lodging.factories import PASSWORD, create_listing, day, make_host


async def test_review_a_completed_stay_and_see_it_on_the_lodging_page(
    browser: Browser,
    site: tuple[str, Platform],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, platform = site
    test = request.node.name
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        host = await make_host(api)
        listing = await create_listing(api, host, price=80_000, name="Maple Stay")
    check_in, check_out = day(2), day(3)
    page = await browser.new_page(locale="ko-KR")
    await page.goto(base + "/signup")
    await sign_up_on_the_page(page, "Jung Guest")
    await page.wait_for_url(base + "/")
    stay = f"check_in={check_in}&check_out={check_out}&guests=2"
    await page.goto(f"{base}/book?room_type_id={listing.room_type['id']}&{stay}")
    await page.locator("[data-testid=pay]").click()
    await page.wait_for_url("**/fake-portone/checkout/**")
    await page.locator("#approve").click()
    await page.wait_for_url("**/reservations/**")
    status = page.locator("[data-testid=reservation-status]")
    await expect(status).to_have_attribute("data-status", "CONFIRMED", timeout=15_000)

    admin = {"Authorization": f"Bearer {platform.signer.issue(uuid.uuid4(), Role.ADMIN).token}"}
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=10) as api:
        ran = await api.post(
            "/api/v1/admin/jobs/complete-stays/run",
            params={"as_of": (check_out + timedelta(days=1)).isoformat()},
        )
        assert ran.status_code == 200, ran.text
    monkeypatch.setattr("haot.review.service.seoul_today", lambda: check_out + timedelta(days=1))
    await page.reload()
    await expect(status).to_have_attribute("data-status", "COMPLETED", timeout=15_000)

    form = page.locator("[data-testid=review-form]")
    await form.get_by_label("5점 만점에 5점").check()
    await form.locator("textarea[name=text]").fill(
        "창밖으로 단풍이 보여요 🍁\n조용하고 따뜻했습니다."
    )
    await look(page, test, "review-form")
    for _ in range(50):  # the review context hears of the completion moments later
        await form.locator("[data-testid=submit-review]").click()
        await page.wait_for_load_state()
        if await page.locator("[data-testid=my-review]").count():
            break
        await page.wait_for_timeout(200)
    await expect(page.locator("[data-testid=my-review]")).to_contain_text("단풍이 보여요 🍁")
    await look(page, test, "reviewed")

    await page.goto(f"{base}/lodgings/{listing.lodging['id']}")
    review = page.locator("[data-testid=review]")
    for _ in range(50):  # the lodging's rating follows through its consumer
        if await review.count() and await page.get_by_text("리뷰 1개").count():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(review).to_have_attribute("data-value", "5")
    await expect(review).to_contain_text("조용하고 따뜻했습니다.")
    await expect(page.get_by_text("리뷰 1개")).to_be_visible()
    await look(page, test, "lodging")
    await page.goto(f"{base}/lodgings/{listing.lodging['id']}/reviews?sort=rating")
    await expect(page.locator("[data-testid=review]")).to_have_count(1)
    await look(page, test, "reviews")
    await page.close()

    # The host answers on their reviews page; the answer is shown with the review.
    hosting = await browser.new_page(locale="ko-KR")
    await log_in(hosting, base, host.email, "/host/reviews")
    mine = hosting.locator("[data-testid=host-review]")
    await expect(mine).to_have_attribute("data-value", "5")
    await mine.locator("[data-testid=reply] textarea[name=text]").fill("다음에도 기다릴게요!")
    await mine.locator("[data-testid=reply] button").click()
    await hosting.wait_for_url("**/host/reviews*")
    await look(hosting, test, "host-reviews")
    await hosting.goto(f"{base}/lodgings/{listing.lodging['id']}")
    await expect(hosting.locator("[data-testid=review] .reply")).to_contain_text(
        "다음에도 기다릴게요!"
    )
    await hosting.close()

    # An admin hides it (a reason is required); it leaves the lodging's page and its rating.
    moderating = await browser.new_page(locale="ko-KR")
    await log_in(moderating, base, await admin_account(platform), "/admin/reviews")
    listed = moderating.locator("[data-testid=admin-review]")
    await expect(listed).to_have_attribute("data-status", "SHOWN")
    await listed.locator("[data-testid=moderate] [name=reason]").fill("광고성 내용")
    await listed.locator("[data-testid=hide]").click()
    await expect(listed).to_have_attribute("data-status", "HIDDEN")
    await look(moderating, test, "admin-reviews")
    await moderating.goto(f"{base}/lodgings/{listing.lodging['id']}")
    for _ in range(50):
        if not await moderating.locator("[data-testid=review]").count():
            break
        await moderating.wait_for_timeout(200)
        await moderating.reload()
    await expect(moderating.locator("[data-testid=review]")).to_have_count(0)
    await moderating.close()


async def log_in(page: Page, base: str, email: str, then: str) -> None:
    await page.goto(f"{base}/login?next={then}")
    await page.locator("input[name=email]").fill(email)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("[data-testid=submit]").click()
    await page.wait_for_url(base + then)

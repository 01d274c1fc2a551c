"""An admin in a real browser: logs in, creates a coupon template and then a coupon event through
``form[data-testid=create-event]``, sees it listed, watches its counts follow a claim without
reloading, and visits every admin page (screenshots and an axe-core check on each)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from haot.identity.schemas import SignUp
from haot.platform.auth import Role
from haot.platform.clock import SEOUL
from haot.platform.container import Platform
from tests.browser.conftest import look
from tests.lodging.factories import PASSWORD, make_user


def local(moment: datetime) -> str:
    return moment.astimezone(SEOUL).strftime("%Y-%m-%dT%H:%M")


async def admin_account(platform: Platform) -> str:
    """An admin of the served app, made the operator's way (``haot create-user``): its email."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    identity = platform.services["identity"]
    await identity.create_user(SignUp(email=email, password=PASSWORD, name="Admin Han"), Role.ADMIN)
    return email


async def log_in(page: Page, base: str, email: str) -> None:
    await page.goto(base + "/login?next=/admin")
    await page.locator("input[name=email]").fill(email)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("[data-testid=submit]").click()
    await page.wait_for_url(base + "/admin")


async def test_an_admin_schedules_a_drop_and_watches_it(
    browser: Browser, site: tuple[str, Platform], request: pytest.FixtureRequest
) -> None:
    base, platform = site
    test = request.node.name
    email = await admin_account(platform)
    page = await browser.new_page(locale="ko-KR")
    await log_in(page, base, email)
    await expect(page.locator("html")).to_have_attribute("lang", "ko")
    await look(page, test, "admin")

    await (
        page.get_by_role("navigation", name="관리자 페이지")
        .get_by_role("link", name="쿠폰", exact=True)
        .click()
    )
    await page.wait_for_url(base + "/admin/coupons")
    coupon_form = page.locator("form[data-testid=create-coupon]")
    await coupon_form.locator("input[name=name]").fill("Cherry blossom 10%")
    await coupon_form.locator("select[name=discount_type]").select_option("PERCENT")
    await coupon_form.locator("input[name=discount_value]").fill("10")
    await coupon_form.locator("input[name=max_discount]").fill("30000")
    await coupon_form.locator("[data-testid=submit]").click()
    await page.wait_for_url(base + "/admin/coupons")
    template = page.locator("[data-testid=coupon-template]", has_text="Cherry blossom 10%")
    await expect(template).to_have_count(1)
    await template.get_by_text("수정").click()  # opens its edit form (details)
    await look(page, test, "coupons")

    await page.goto(base + "/admin/coupon-events")
    form = page.locator("form[data-testid=create-event]")
    await form.locator("select[name=coupon_id]").select_option(label="Cherry blossom 10%")
    await form.locator("input[name=name]").fill("Spring drop")
    now = datetime.now(SEOUL)
    await form.locator("input[name=starts_at]").fill(local(now - timedelta(minutes=1)))
    await form.locator("input[name=ends_at]").fill(local(now + timedelta(hours=3)))
    await form.locator("input[name=quantity]").fill("3")
    await form.locator("[data-testid=submit]").click()
    await page.wait_for_url(base + "/admin/coupon-events")
    row = page.locator("[data-testid=admin-event]", has_text="Spring drop")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-status", "OPEN")
    await look(page, test, "events")

    # The refused form: the API's answer beside its field, announced to assistive technology.
    await form.locator("select[name=coupon_id]").select_option(label="Cherry blossom 10%")
    await form.locator("input[name=starts_at]").fill(local(now + timedelta(days=2)))
    await form.locator("input[name=ends_at]").fill(local(now + timedelta(days=1)))
    await form.locator("[data-testid=submit]").click()
    await expect(page.locator("#ends_at-error")).to_be_visible()
    await expect(page.locator("#ends_at")).to_have_attribute("aria-invalid", "true")
    await look(page, test, "events-refused")

    await page.goto(base + "/admin/coupon-events")
    await row.get_by_role("link", name="Spring drop").click()
    await page.wait_for_url(base + "/admin/coupon-events/*")
    issued = page.locator("[data-testid=event-issued]")
    remaining = page.locator("[data-testid=event-remaining]")
    await expect(issued).to_have_attribute("data-value", "0")
    await expect(remaining).to_have_attribute("data-value", "3")
    await look(page, test, "event")

    event_id = page.url.rsplit("/", 1)[-1]
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        guest = await make_user(api)
        claim = await api.post(f"/api/v1/coupon-events/{event_id}/claims", headers=guest.headers)
        assert claim.status_code == 202, claim.text
    # No reload: the counts follow the drop on their own.
    await expect(issued).to_have_attribute("data-value", "1", timeout=15_000)
    await expect(remaining).to_have_attribute("data-value", "2")

    for path, name in (
        ("/admin/users", "users"),
        (f"/admin/points?user_id={guest.id}", "points"),
        ("/admin/payments", "payments"),
        ("/admin/jobs", "jobs"),
    ):
        await page.goto(base + path)
        await look(page, test, name)

    jobs = page.locator("[data-testid=job][data-job=expire-points]")
    await jobs.locator("input[name=dry_run]").check()
    await jobs.locator("[data-testid=run]").click()
    await page.wait_for_url("**/admin/jobs?ran=*")
    result = page.locator("[data-testid=job-result]")
    await expect(result).to_have_attribute("data-job", "expire-points")
    await expect(result).to_have_attribute("data-dry-run", "true")
    await look(page, test, "jobs-ran")
    await page.close()

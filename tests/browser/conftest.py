"""A real browser on the real app: Debian's Chromium driven by PyPI playwright through its
executable path (never ``playwright install``), against the app served on a loopback port.
Screenshots are kept under ``var/screenshots/`` (the test output); axe-core checks each page."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from haot.platform.container import Platform
from haot.platform.settings import Settings
from tests.lodging.factories import Listing, create_listing, make_host
from tests.support.server import real_server
from tests.support.services import unavailable

CHROMIUM = Path(os.environ.get("HAOT_TEST_CHROMIUM", "/usr/bin/chromium"))
# As root, without a sandbox; and no calls home (this machine's network refuses them).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = {"mobile": (390, 844), "desktop": (1280, 800)}


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The browser walks run on PostgreSQL, production's engine, only: a page is the same on both
    engines, and tests/web runs every page over HTTP on both."""
    return str(request.param)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable("Chromium", f"{CHROMIUM} is missing (scripts/ensure-chromium.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[tuple[str, Platform]]:
    """The whole app (built-in fake PortOne included) on a loopback port."""
    async with real_server(settings, fake_portone=True) as served:
        yield served


async def look(page: Page, test: str, name: str) -> None:
    """Screenshots of the page at a phone's and a desktop's width, and an axe-core check: no
    serious or critical accessibility violation."""
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", test)
    folder.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    results = await Axe().run(page)
    serious = [
        violation
        for violation in results.response["violations"]
        if violation.get("impact") in ("serious", "critical")
    ]
    assert not serious, _report(serious)


async def listing_on(base: str, *, price: int, name: str) -> Listing:
    """A host's lodging with one room type open at ``price`` a night, made through the API of
    the served app."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        return await create_listing(api, await make_host(api), price=price, name=name)


async def sign_up_on_the_page(page: Page, name: str) -> None:
    """Fill in the sign-up page the browser is on, as a new guest, and send it."""
    await page.locator("input[name=name]").fill(name)
    await page.locator("input[name=email]").fill(f"guest-{uuid.uuid4().hex[:8]}@example.com")
    await page.locator("input[name=password]").fill("a-long-enough-password")
    await page.locator("[data-testid=submit]").click()


def _report(violations: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in violations
    )

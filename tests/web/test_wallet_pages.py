"""The guest's coupon events, coupons, points and account pages over HTTP (both engines): a claim
from the page (plain form and htmx), its outcome, refusals shown in place, my coupons by status,
my points with what expires and the history, my details and password."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta

import httpx

from haot.platform.auth import Role
from haot.platform.clock import utcnow
from tests.web.test_account_pages import HTML, csrf_of, sign_up

HTMX = HTML | {"HX-Request": "true"}


def admin(client: httpx.AsyncClient) -> dict[str, str]:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {platform.signer.issue(uuid.uuid4(), Role.ADMIN).token}"}


def me(client: httpx.AsyncClient) -> dict[str, str]:
    """The signed-in page visitor's own bearer token (the session cookie holds it)."""
    return {"Authorization": f"Bearer {client.cookies['haot_session']}"}


async def drop(
    client: httpx.AsyncClient, *, quantity: int | None, starts_in: timedelta = timedelta(0)
) -> str:
    now = utcnow()
    coupon = await client.post(
        "/api/v1/admin/coupons",
        headers=admin(client),
        json={
            "name": "Winter drop",
            "discount_type": "PERCENT",
            "discount_value": 15,
            "max_discount": 30_000,
            "min_order_amount": 50_000,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_to": (now + timedelta(days=30)).isoformat(),
        },
    )
    assert coupon.status_code == 201, coupon.text
    starts = now + starts_in - timedelta(seconds=5)
    event = await client.post(
        "/api/v1/admin/coupon-events",
        headers=admin(client),
        json={
            "coupon_id": coupon.json()["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "quantity": quantity,
        },
    )
    assert event.status_code == 201, event.text
    return str(event.json()["id"])


def event_card(html: str, event_id: str) -> str:
    found = re.search(rf'<li class="card" id="event-{event_id}".*?</li>', html, re.S)
    assert found, f"no card of {event_id}"
    return found.group(0)


def claim_status(html: str) -> tuple[str, str]:
    found = re.search(
        r'data-testid="claim-status" data-status="(\w+)" data-claim-id="([^"]*)"', html
    )
    assert found, html
    return found.group(1), found.group(2)


async def settled(client: httpx.AsyncClient, claim_id: str) -> str:
    """The claim's status once issuing (asynchronous) has decided it."""
    for _ in range(200):
        fragment = await client.get(f"/coupon-claims/{claim_id}", headers=HTMX)
        assert fragment.status_code == 200, fragment.text
        status, _ = claim_status(fragment.text)
        if status != "PENDING":
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the claim never settled")


async def test_a_claim_from_the_page_without_javascript(app_client: httpx.AsyncClient) -> None:
    event_id = await drop(app_client, quantity=3)
    anonymous = await app_client.get("/coupon-events", headers=HTML)
    assert anonymous.status_code == 200
    card = event_card(anonymous.text, event_id)
    assert 'data-testid="coupon-event"' in card
    assert 'data-testid="remaining" data-value="3"' in card
    assert '<a data-testid="claim" href="/login?next=/coupon-events">' in card

    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/coupon-events", headers=HTML)
    assert 'data-testid="claim"' in event_card(page.text, event_id)
    claimed = await app_client.post(
        f"/coupon-events/{event_id}/claim", data={"csrf": csrf_of(page.text)}, headers=HTML
    )
    assert claimed.status_code == 303, claimed.text
    assert claimed.headers["location"].startswith("/coupon-events?claim=")
    shown = await app_client.get(claimed.headers["location"], headers=HTML)
    status, claim_id = claim_status(event_card(shown.text, event_id))
    assert status in ("PENDING", "ISSUED")
    assert await settled(app_client, claim_id) == "ISSUED"

    # Claimed: the event says so, and offers no second claim.
    after = event_card((await app_client.get("/coupon-events", headers=HTML)).text, event_id)
    assert 'data-status="ISSUED"' in after
    assert 'data-testid="claim"' not in after
    coupons = await app_client.get("/coupons", headers=HTML)
    assert re.findall(r'data-testid="coupon" data-status="(\w+)"', coupons.text) == ["ISSUED"]
    assert "15% 할인, 최대 ₩30,000" in coupons.text
    used = await app_client.get("/coupons", params={"status": "USED"}, headers=HTML)
    assert 'data-testid="coupon"' not in used.text


async def test_a_claim_with_htmx_answers_in_place(app_client: httpx.AsyncClient) -> None:
    event_id = await drop(app_client, quantity=None)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/coupon-events", headers=HTML)
    token = csrf_of(page.text)
    claimed = await app_client.post(
        f"/coupon-events/{event_id}/claim", data={"csrf": token}, headers=HTMX
    )
    assert claimed.status_code == 200, claimed.text
    status, claim_id = claim_status(claimed.text)
    assert status == "PENDING"
    assert claim_id
    assert await settled(app_client, claim_id) == "ISSUED"

    again = await app_client.post(
        f"/coupon-events/{event_id}/claim", data={"csrf": token}, headers=HTMX
    )
    assert again.status_code == 200  # htmx swaps only a 2xx: the refusal is shown in place
    assert claim_status(again.text)[0] == "FAILED"
    assert "이미 받으셨습니다" in again.text


async def test_refusals_are_shown_beside_their_event(app_client: httpx.AsyncClient) -> None:
    sold_out = await drop(app_client, quantity=1)
    later = await drop(app_client, quantity=10, starts_in=timedelta(hours=2))
    await sign_up(app_client, f"first-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/coupon-events", headers=HTML)
    first = await app_client.post(
        f"/coupon-events/{sold_out}/claim", data={"csrf": csrf_of(page.text)}, headers=HTML
    )
    assert first.status_code == 303
    # Issued: the event may close by exhaustion and leave the list (either way, below).
    _, first_claim = claim_status(
        event_card((await app_client.get(first.headers["location"], headers=HTML)).text, sold_out)
    )
    assert await settled(app_client, first_claim) == "ISSUED"

    app_client.cookies.clear()
    await sign_up(app_client, f"second-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/coupon-events", headers=HTML)
    countdown = re.search(r'data-countdown data-seconds="(\d+)"', event_card(page.text, later))
    assert countdown
    assert 7000 < int(countdown.group(1)) <= 7200  # opens in two hours
    token = csrf_of(page.text)
    gone = await app_client.post(
        f"/coupon-events/{sold_out}/claim", data={"csrf": token}, headers=HTML
    )
    assert gone.status_code == 409
    assert claim_status(event_card(gone.text, sold_out))[0] == "FAILED"
    assert "모두 소진되었습니다" in event_card(gone.text, sold_out)
    early = await app_client.post(
        f"/coupon-events/{later}/claim", data={"csrf": token}, headers=HTML
    )
    assert early.status_code == 409
    assert "신청할 수 없습니다" in event_card(early.text, later)
    missing = await app_client.post(
        f"/coupon-events/{uuid.uuid4()}/claim", data={"csrf": token}, headers=HTML
    )
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    forged = await app_client.post(f"/coupon-events/{later}/claim", data={}, headers=HTML)
    assert forged.status_code == 403


async def test_a_refusal_is_shown_even_for_an_event_no_longer_listed(
    app_client: httpx.AsyncClient,
) -> None:
    event_id = await drop(app_client, quantity=5)
    await sign_up(app_client, f"late-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/coupon-events", headers=HTML)
    assert 'data-testid="claim"' in event_card(page.text, event_id)
    closed = await app_client.patch(
        f"/api/v1/admin/coupon-events/{event_id}",
        headers=admin(app_client),
        json={"status": "CLOSED"},
    )
    assert closed.status_code == 200, closed.text
    listed = await app_client.get("/api/v1/coupon-events")
    assert event_id not in {event["id"] for event in listed.json()["items"]}

    late = await app_client.post(
        f"/coupon-events/{event_id}/claim", data={"csrf": csrf_of(page.text)}, headers=HTML
    )
    assert late.status_code == 409
    card = event_card(late.text, event_id)  # still on the page, with why
    assert claim_status(card)[0] == "FAILED"


async def test_claim_status_is_the_claimants_own(app_client: httpx.AsyncClient) -> None:
    event_id = await drop(app_client, quantity=None)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    page = await app_client.get("/coupon-events", headers=HTML)
    claimed = await app_client.post(
        f"/coupon-events/{event_id}/claim", data={"csrf": csrf_of(page.text)}, headers=HTMX
    )
    _, claim_id = claim_status(claimed.text)
    app_client.cookies.clear()
    await sign_up(app_client, f"other-{uuid.uuid4().hex[:8]}@example.com")
    assert (await app_client.get(f"/coupon-claims/{claim_id}", headers=HTML)).status_code == 404
    # Someone else's claim id in the address shows nothing of it.
    shown = await app_client.get("/coupon-events", params={"claim": claim_id}, headers=HTML)
    assert 'data-testid="claim-status"' not in shown.text


async def test_my_points_show_balance_expiry_and_history(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/points", headers=HTML)).status_code == 303
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    empty = await app_client.get("/points", headers=HTML)
    assert 'data-testid="point-balance" data-value="0"' in empty.text
    user_id = (await app_client.get("/api/v1/users/me", headers=me(app_client))).json()["id"]
    for amount, days in ((3_000, 10), (2_000, 90)):
        granted = await app_client.post(
            "/api/v1/admin/points/grants",
            headers=admin(app_client),
            json={
                "user_id": user_id,
                "amount": amount,
                "reason": "welcome",
                "expires_at": (utcnow() + timedelta(days=days)).isoformat(),
            },
        )
        assert granted.status_code == 201, granted.text
    page = await app_client.get("/points", headers=HTML)
    assert 'data-testid="point-balance" data-value="5000"' in page.text
    assert 'data-testid="point-expiring" data-value="3000"' in page.text  # within 30 days
    assert re.findall(r'data-testid="point-entry" data-value="(-?\d+)"', page.text) == [
        "2000",
        "3000",
    ]


async def test_my_account_details_and_password(app_client: httpx.AsyncClient) -> None:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    await sign_up(app_client, email)
    page = await app_client.get("/account", headers=HTML)
    assert page.status_code == 200
    assert email in page.text
    token = csrf_of(page.text)
    saved = await app_client.post(
        "/account",
        data={
            "csrf": token,
            "name": "Kim Renamed",
            "phone": "010-1234-5678",
            "birth_date": "1990-05-01",
            "gender": "FEMALE",
        },
        headers=HTML,
    )
    assert saved.status_code == 303, saved.text
    shown = await app_client.get(saved.headers["location"], headers=HTML)
    assert 'value="Kim Renamed"' in shown.text
    assert 'value="010-1234-5678"' in shown.text
    assert '<option value="FEMALE" selected>' in shown.text

    bad = await app_client.post(
        "/account",
        data={"csrf": token, "name": "Kim", "phone": "call me", "birth_date": "2999-01-01"},
        headers=HTML,
    )
    assert bad.status_code == 422
    assert 'id="phone" name="phone"' in bad.text
    assert re.search(r'id="phone-error"', bad.text)
    assert re.search(r'id="birth_date-error"', bad.text)
    cleared = await app_client.post(
        "/account", data={"csrf": token, "name": "Kim", "phone": ""}, headers=HTML
    )
    assert cleared.status_code == 303
    profile = (await app_client.get("/api/v1/users/me", headers=me(app_client))).json()
    assert profile["phone"] is None
    assert profile["name"] == "Kim"

    wrong = await app_client.post(
        "/account/password",
        data={"csrf": token, "current_password": "not-it", "new_password": "another-long-one"},
        headers=HTML,
    )
    assert wrong.status_code == 401
    assert 'id="current_password-error"' in wrong.text
    elsewhere = httpx.AsyncClient(transport=app_client._transport, base_url="http://testserver")
    other_session = await elsewhere.post(
        "/api/v1/auth/login", json={"email": email, "password": "a-long-enough-password"}
    )
    assert other_session.status_code == 200
    changed = await app_client.post(
        "/account/password",
        data={
            "csrf": token,
            "current_password": "a-long-enough-password",
            "new_password": "a-new-and-long-password",
        },
        headers=HTML,
    )
    assert changed.status_code == 303, changed.text
    # This session goes on; the other one ended with the old password.
    still = await app_client.get(changed.headers["location"], headers=HTML)
    assert still.status_code == 200
    assert 'data-testid="logout"' in still.text
    refresh = other_session.json()["refresh_token"]
    ended = await elsewhere.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert ended.status_code == 401
    await elsewhere.aclose()

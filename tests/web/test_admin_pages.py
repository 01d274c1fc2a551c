"""The admin pages over HTTP (both engines): anonymous visitors go to log in, guests and hosts get
the 403 page, and an admin works every page through its forms: users (role, deactivation), coupon
templates and events (the API's refusals beside their fields, the drop's counts following a
claim), points (grant, deduct), payments and jobs (a dry run); a form without its CSRF token is
refused."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from haot.platform.clock import SEOUL
from tests.lodging.factories import PASSWORD, Actor, make_admin, make_host, make_user
from tests.web.test_account_pages import HTML, csrf_of, form_page, sign_up
from tests.web.test_booking_pages import booking_query, pay_form

ENGLISH = HTML | {"Accept-Language": "en"}
API = "/api/v1"
SOME_ID = "0b0e7a51-59c6-4d0e-9a8f-3c8f4f3b1a11"
PAGES = [
    "/admin",
    "/admin/users",
    "/admin/coupons",
    "/admin/coupon-events",
    f"/admin/coupon-events/{SOME_ID}",
    f"/admin/coupon-events/{SOME_ID}/live",
    "/admin/points",
    "/admin/payments",
    "/admin/jobs",
]
FORMS = [
    f"/admin/users/{SOME_ID}",
    "/admin/coupons",
    f"/admin/coupons/{SOME_ID}",
    f"/admin/coupons/{SOME_ID}/issue",
    "/admin/coupon-events",
    f"/admin/coupon-events/{SOME_ID}",
    f"/admin/coupon-events/{SOME_ID}/close",
    "/admin/points/grants",
    "/admin/points/deductions",
    "/admin/jobs/expire-holds/run",
]


def local(moment: datetime) -> str:
    """What a ``datetime-local`` input holds for ``moment``: Seoul wall time, to the minute."""
    return moment.astimezone(SEOUL).strftime("%Y-%m-%dT%H:%M")


def now() -> datetime:
    return datetime.now(SEOUL)


async def log_in_on_the_page(client: httpx.AsyncClient, email: str) -> None:
    client.cookies.clear()
    token = await form_page(client, "/login")
    answer = await client.post(
        "/login", data={"csrf": token, "email": email, "password": PASSWORD}, headers=HTML
    )
    assert answer.status_code == 303, answer.text


async def admin_on_the_pages(client: httpx.AsyncClient) -> Actor:
    """An admin (made the operator's way), signed in through the log-in page."""
    admin = await make_admin(client)
    await log_in_on_the_page(client, admin.email)
    return admin


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    answer = await client.get(path, headers=ENGLISH)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


async def send(
    client: httpx.AsyncClient, path: str, form: dict[str, Any], *, csrf_from: str = "/admin"
) -> httpx.Response:
    """Post ``form`` with the CSRF token of the page at ``csrf_from``."""
    token = csrf_of(await page(client, csrf_from))
    data = {k: str(v) for k, v in form.items()} | {"csrf": token}
    return await client.post(path, data=data, headers=ENGLISH)


def field_error(html: str, input_id: str) -> str:
    """The error shown beside an input, which points at it (aria-describedby)."""
    assert re.search(
        rf'id="{re.escape(input_id)}"[^>]*aria-invalid="true"[^>]*'
        rf'aria-describedby="[^"]*{re.escape(input_id)}-error',
        html,
    ), f"{input_id} is not marked invalid"
    found = re.search(rf'<p class="error" id="{re.escape(input_id)}-error">([^<]+)</p>', html)
    assert found, f"no error beside {input_id}"
    return found.group(1)


async def create_coupon(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    """A coupon template made through the coupons page; its API answer."""
    form = {
        "name": name,
        "discount_type": "FIXED",
        "discount_value": 5000,
        "max_discount": "",
        "min_order_amount": 0,
        "valid_from": local(now() - timedelta(days=1)),
        "valid_to": local(now() + timedelta(days=30)),
        "lodging_id": "",
    } | fields
    created = await send(client, "/admin/coupons", form, csrf_from="/admin/coupons")
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/admin/coupons"
    listed = await page(client, "/admin/coupons")
    assert name in listed
    coupon_id = re.search(rf"<h3>{re.escape(name)}</h3>.*?Id: ([0-9a-f-]{{36}})", listed, re.S)
    assert coupon_id
    return {"id": coupon_id.group(1), "name": name}


async def create_event(
    client: httpx.AsyncClient, chosen: str, name: str, **fields: Any
) -> httpx.Response:
    """Send the coupon events page's ``form[data-testid=create-event]``."""
    events = await page(client, "/admin/coupon-events")
    form = re.search(r'<form[^>]*data-testid="create-event".*?</form>', events, re.S)
    assert form, "no create-event form"
    assert 'action="/admin/coupon-events"' in form.group(0)
    assert 'method="post"' in form.group(0)
    assert f'<option value="{chosen}">' in form.group(0)
    for name_of_input in ("coupon_id", "starts_at", "ends_at", "quantity"):
        assert f'name="{name_of_input}"' in form.group(0)
    data = {
        "coupon_id": chosen,
        "name": name,
        "starts_at": local(now() + timedelta(hours=1)),
        "ends_at": local(now() + timedelta(days=1)),
        "quantity": "",
        "csrf": csrf_of(form.group(0)),
    } | fields
    return await client.post("/admin/coupon-events", data=data, headers=ENGLISH)


async def event_named(client: httpx.AsyncClient, admin: Actor, name: str) -> dict[str, Any]:
    listed = await client.get(f"{API}/admin/coupon-events?size=100", headers=admin.headers)
    event: dict[str, Any] = next(e for e in listed.json()["items"] if e["name"] == name)
    return event


async def test_anonymous_visitors_are_sent_to_log_in(app_client: httpx.AsyncClient) -> None:
    for path in PAGES:
        answer = await app_client.get(path, headers=HTML)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=%2Fadmin"), path


async def test_guests_and_hosts_get_the_403_page_everywhere(
    app_client: httpx.AsyncClient,
) -> None:
    host = await make_host(app_client)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    for who in ("guest", "host"):
        if who == "host":
            await log_in_on_the_page(app_client, host.email)
        home = await page(app_client, "/")
        assert 'href="/admin"' not in home
        for path in PAGES:
            refused = await page(app_client, path, status=403)
            assert "This page is not for your account" in refused, (who, path)
        token = csrf_of(home)
        for path in FORMS:
            refused_form = await app_client.post(path, data={"csrf": token}, headers=ENGLISH)
            assert refused_form.status_code == 403, (who, path)
            assert "This page is not for your account" in refused_form.text, (who, path)


async def test_an_admin_finds_a_user_changes_the_role_and_deactivates(
    app_client: httpx.AsyncClient,
) -> None:
    guest = await make_user(app_client)
    admin = await admin_on_the_pages(app_client)
    home = await page(app_client, "/admin")
    for path in PAGES[:4] + PAGES[6:]:
        assert f'href="{path}"' in home
    assert 'href="/admin"' in await page(app_client, "/")  # the header links to the admin pages

    back = f"/admin/users?q={guest.email.replace('@', '%40')}"
    found = await page(app_client, back)
    cards = re.findall(r'data-testid="user" data-role="(\w+)" data-active="(\w+)"', found)
    assert cards == [("USER", "true")]
    assert guest.email in found
    assert f'for="role-{guest.id}"' in found  # every control has its label

    promoted = await send(
        app_client, f"/admin/users/{guest.id}", {"role": "HOST", "back": back}, csrf_from=back
    )
    assert promoted.status_code == 303, promoted.text
    assert promoted.headers["location"] == back
    after = await page(app_client, back)
    assert re.findall(r'data-testid="user" data-role="(\w+)" data-active="(\w+)"', after) == [
        ("HOST", "true")
    ]

    off = await send(
        app_client, f"/admin/users/{guest.id}", {"active": "false", "back": back}, csrf_from=back
    )
    assert off.status_code == 303, off.text
    after = await page(app_client, back)
    assert re.findall(r'data-testid="user" data-role="(\w+)" data-active="(\w+)"', after) == [
        ("HOST", "false")
    ]
    assert 'data-testid="activate"' in after
    read = await app_client.get(f"{API}/admin/users/{guest.id}", headers=admin.headers)
    assert read.json()["role"] == "HOST"
    assert read.json()["active"] is False

    bad_role = await send(
        app_client, f"/admin/users/{guest.id}", {"role": "KING", "back": back}, csrf_from=back
    )
    assert bad_role.status_code == 422
    assert field_error(bad_role.text, f"role-{guest.id}")
    missing = await send(app_client, f"/admin/users/{SOME_ID}", {"active": "true"})
    assert missing.status_code == 404
    assert "This page does not exist" in missing.text


async def test_an_admin_creates_a_coupon_and_an_event_and_sees_it_listed(
    app_client: httpx.AsyncClient,
) -> None:
    admin = await admin_on_the_pages(app_client)
    coupon = await create_coupon(app_client, "Winter ten thousand", discount_value=10_000)
    starts, ends = now() + timedelta(hours=2), now() + timedelta(days=2)
    created = await create_event(
        app_client,
        coupon["id"],
        "Winter drop",
        starts_at=local(starts),
        ends_at=local(ends),
        quantity="100",
    )
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/admin/coupon-events"
    listed = await page(app_client, "/admin/coupon-events")
    row = re.search(r'<tr data-testid="admin-event" data-status="(\w+)">(.*?)</tr>', listed, re.S)
    assert row
    assert row.group(1) == "SCHEDULED"
    assert "Winter drop" in row.group(2)
    assert "Winter ten thousand" in row.group(2)
    assert "<caption" in listed
    assert 'scope="col"' in listed

    event = await event_named(app_client, admin, "Winter drop")
    # The form's Korean wall time went to the API with Seoul's offset.
    assert datetime.fromisoformat(event["starts_at"]) == starts.replace(second=0, microsecond=0)
    assert event["quantity"] == 100
    assert event["coupon_id"] == coupon["id"]

    unlimited = await create_event(app_client, coupon["id"], "Everyone gets one")
    assert unlimited.status_code == 303, unlimited.text
    assert (await event_named(app_client, admin, "Everyone gets one"))["quantity"] is None

    # Edit the template and issue it to a user directly.
    guest = await make_user(app_client)
    edited = await send(
        app_client,
        f"/admin/coupons/{coupon['id']}",
        {"name": "Winter 10k", "valid_to": local(now() + timedelta(days=40)), "active": "true"},
        csrf_from="/admin/coupons",
    )
    assert edited.status_code == 303, edited.text
    assert "<h3>Winter 10k</h3>" in await page(app_client, "/admin/coupons")
    issued = await send(
        app_client,
        f"/admin/coupons/{coupon['id']}/issue",
        {"user_ids": f"{guest.id}\n", "back": "/admin/coupons"},
        csrf_from="/admin/coupons",
    )
    assert issued.status_code == 303, issued.text
    assert "1 coupons issued." in await page(app_client, issued.headers["location"])
    mine = await app_client.get(f"{API}/coupons", headers=guest.headers)
    assert [c["coupon"]["name"] for c in mine.json()["items"]] == ["Winter 10k"]


async def test_bad_input_is_shown_beside_its_field(app_client: httpx.AsyncClient) -> None:
    await admin_on_the_pages(app_client)
    coupon = await create_coupon(app_client, "Spring five thousand")

    backwards = await create_event(
        app_client,
        coupon["id"],
        "Backwards",
        starts_at=local(now() + timedelta(days=2)),
        ends_at=local(now() + timedelta(days=1)),
    )
    assert backwards.status_code == 422, backwards.text
    assert field_error(backwards.text, "ends_at") == "The end must be after the start."
    assert 'value="Backwards"' in backwards.text  # what was typed stays

    for unknown in (str(uuid.uuid4()), "not-a-coupon"):
        refused = await create_event(app_client, coupon["id"], "Nowhere", coupon_id=unknown)
        assert refused.status_code == 422, refused.text
        assert field_error(refused.text, "coupon_id")

    no_start = await create_event(app_client, coupon["id"], "No start", starts_at="")
    assert no_start.status_code == 422
    assert field_error(no_start.text, "starts_at")
    zero = await create_event(app_client, coupon["id"], "Zero", quantity="0")
    assert zero.status_code == 422
    assert field_error(zero.text, "quantity")

    base = {
        "name": "Broken",
        "discount_type": "FIXED",
        "discount_value": 1000,
        "min_order_amount": 0,
        "valid_from": local(now()),
        "valid_to": local(now() + timedelta(days=1)),
    }
    for change, field in (
        ({"valid_to": local(now() - timedelta(days=1))}, "valid_to"),
        ({"discount_value": ""}, "discount_value"),
        ({"discount_type": "BOGUS"}, "discount_type"),
        ({"lodging_id": "nowhere"}, "lodging_id"),
    ):
        broken = await send(app_client, "/admin/coupons", base | change)
        assert broken.status_code == 422, (change, broken.text)
        assert field_error(broken.text, field), change
    too_much = await send(
        app_client, "/admin/coupons", base | {"discount_type": "PERCENT", "discount_value": 150}
    )
    assert too_much.status_code == 422
    assert "at most 100" in too_much.text

    nobody = await send(
        app_client,
        f"/admin/coupons/{coupon['id']}/issue",
        {"user_ids": "someone"},
        csrf_from="/admin/coupons",
    )
    assert nobody.status_code == 422
    assert field_error(nobody.text, f"user_ids-{coupon['id']}")

    long_search = await page(app_client, "/admin/coupons?q=" + "x" * 101, 422)
    assert field_error(long_search, "coupon-q")
    far = await page(app_client, "/admin/users?page=99999999999")  # past the end: empty
    assert 'data-testid="user"' not in far


async def test_the_live_counts_follow_a_claim(app_client: httpx.AsyncClient) -> None:
    admin = await admin_on_the_pages(app_client)
    coupon = await create_coupon(app_client, "Drop coupon")
    created = await create_event(
        app_client,
        coupon["id"],
        "Live drop",
        starts_at=local(now() - timedelta(minutes=1)),
        quantity="5",
    )
    assert created.status_code == 303, created.text
    event = await event_named(app_client, admin, "Live drop")
    path = f"/admin/coupon-events/{event['id']}"

    watched = await page(app_client, path)
    assert f'hx-get="{path}/live"' in watched
    assert 'hx-trigger="every 2s"' in watched
    assert f'href="{path}"' in watched  # the reload link, for a browser without JavaScript
    assert 'data-testid="event-status" data-status="OPEN"' in watched
    assert 'data-testid="event-issued" data-value="0"' in watched
    assert 'data-testid="event-remaining" data-value="5"' in watched

    guest = await make_user(app_client)
    claim = await app_client.post(
        f"{API}/coupon-events/{event['id']}/claims", headers=guest.headers
    )
    assert claim.status_code == 202, claim.text
    fragment = ""
    for _ in range(100):  # the coupon is issued moments after the claim
        fragment = await page(app_client, f"{path}/live")
        if 'data-testid="event-issued" data-value="1"' in fragment:
            break
        await asyncio.sleep(0.1)
    assert 'data-testid="event-issued" data-value="1"' in fragment, fragment
    assert 'data-testid="event-remaining" data-value="4"' in fragment
    assert "<html" not in fragment  # the fragment alone, not a page

    # A started event: its name and end can change, its quantity not (the API's 409, shown).
    form = {
        "name": "Live drop (extended)",
        "starts_at": local(datetime.fromisoformat(event["starts_at"])),
        "ends_at": local(now() + timedelta(days=3)),
        "quantity": "5",
    }
    renamed = await send(app_client, path, form, csrf_from=path)
    assert renamed.status_code == 303, renamed.text
    assert "<h1>Live drop (extended)</h1>" in await page(app_client, path)
    locked = await send(app_client, path, form | {"quantity": "50"}, csrf_from=path)
    assert locked.status_code == 409, locked.text
    assert 'class="error" role="alert"' in locked.text

    closed = await send(app_client, f"{path}/close", {}, csrf_from=path)
    assert closed.status_code == 303
    after = await page(app_client, path)
    assert 'data-testid="event-status" data-status="CLOSED"' in after
    assert 'data-testid="close-event"' not in after


async def test_an_admin_grants_and_deducts_points(app_client: httpx.AsyncClient) -> None:
    guest = await make_user(app_client)
    await admin_on_the_pages(app_client)
    mine = f"/admin/points?user_id={guest.id}"
    before = await page(app_client, mine)
    assert 'data-testid="point-balance" data-value="0"' in before
    assert guest.email in before

    granted = await send(
        app_client,
        "/admin/points/grants",
        {"user_id": guest.id, "amount": 5000, "reason": "Sorry for the noise", "expires_at": ""},
        csrf_from=mine,
    )
    assert granted.status_code == 303, granted.text
    assert granted.headers["location"] == mine
    after = await page(app_client, mine)
    assert 'data-testid="point-balance" data-value="5000"' in after
    assert 'data-testid="point-entry" data-type="ADMIN_GRANT" data-value="5000"' in after
    assert "Sorry for the noise" in after

    too_much = await send(
        app_client,
        "/admin/points/deductions",
        {"user_id": guest.id, "amount": 7000, "reason": "Correction"},
        csrf_from=mine,
    )
    assert too_much.status_code == 409, too_much.text
    assert 'class="error" role="alert"' in too_much.text
    assert 'value="Correction"' in too_much.text
    taken = await send(
        app_client,
        "/admin/points/deductions",
        {"user_id": guest.id, "amount": 2000, "reason": "Correction"},
        csrf_from=mine,
    )
    assert taken.status_code == 303, taken.text
    assert 'data-testid="point-balance" data-value="3000"' in await page(app_client, mine)

    zero = await send(
        app_client,
        "/admin/points/grants",
        {"user_id": guest.id, "amount": 0, "reason": "Nothing"},
        csrf_from=mine,
    )
    assert zero.status_code == 422
    assert field_error(zero.text, "grant-amount")
    past = await send(
        app_client,
        "/admin/points/grants",
        {
            "user_id": guest.id,
            "amount": 10,
            "reason": "Late",
            "expires_at": local(now() - timedelta(days=1)),
        },
        csrf_from=mine,
    )
    assert past.status_code == 422
    assert field_error(past.text, "grant-expires_at")
    assert field_error(
        await page(app_client, "/admin/points?user_id=nobody", 422), "search-user_id"
    )
    everyone = await page(app_client, "/admin/points")
    assert everyone.count('data-testid="point-entry"') == 2


async def test_an_admin_runs_a_job(app_client: httpx.AsyncClient) -> None:
    await admin_on_the_pages(app_client)
    listed = await page(app_client, "/admin/jobs")
    for job in (
        "expire-holds",
        "complete-stays",
        "expire-points",
        "reconcile-payments",
        "reconcile-coupons",
    ):
        assert f'action="/admin/jobs/{job}/run"' in listed

    dry = await send(
        app_client,
        "/admin/jobs/expire-points/run",
        {"dry_run": "1", "as_of": local(now() + timedelta(days=400))},
        csrf_from="/admin/jobs",
    )
    assert dry.status_code == 303, dry.text
    assert dry.headers["location"].startswith("/admin/jobs?ran=")
    shown = await page(app_client, dry.headers["location"])
    assert 'data-testid="job-result" data-job="expire-points" data-dry-run="true"' in shown

    ran = await send(app_client, "/admin/jobs/expire-holds/run", {}, csrf_from="/admin/jobs")
    assert ran.status_code == 303, ran.text
    shown = await page(app_client, ran.headers["location"])
    assert 'data-testid="job-result" data-job="expire-holds" data-dry-run="false"' in shown
    assert 'data-name="expired" data-value="0"' in shown

    no_dry_run = await send(
        app_client, "/admin/jobs/expire-holds/run", {"dry_run": "1"}, csrf_from="/admin/jobs"
    )
    assert no_dry_run.status_code == 422
    assert field_error(no_dry_run.text, "dry_run-expire-holds")
    bad_moment = await send(
        app_client, "/admin/jobs/expire-holds/run", {"as_of": "soon"}, csrf_from="/admin/jobs"
    )
    assert bad_moment.status_code == 422
    assert field_error(bad_moment.text, "as_of-expire-holds")
    unknown = await send(app_client, "/admin/jobs/nothing/run", {}, csrf_from="/admin/jobs")
    assert unknown.status_code == 404
    forged = await page(app_client, "/admin/jobs?ran=forged")
    assert 'data-testid="job-result"' not in forged


async def test_the_payments_page_lists_a_payment(app_client: httpx.AsyncClient) -> None:
    stay = await booking_query(app_client)
    await sign_up(app_client, f"guest-{uuid.uuid4().hex[:8]}@example.com")
    booked = await app_client.post("/book", data=await pay_form(app_client, stay), headers=HTML)
    assert booked.status_code == 303, booked.text
    await admin_on_the_pages(app_client)
    listed = await page(app_client, "/admin/payments")
    assert re.findall(r'data-testid="payment" data-status="(\w+)" data-value="(\d+)"', listed) == [
        ("READY", "180000")
    ]
    assert 'data-testid="payment-refunded" data-value="0"' in listed
    assert "<caption" in listed
    paid_only = await page(app_client, "/admin/payments?status=PAID")
    assert 'data-testid="payment"' not in paid_only
    bogus = await page(app_client, "/admin/payments?status=BOGUS", 422)
    assert field_error(bogus, "status")


async def test_a_form_without_its_csrf_token_is_refused(app_client: httpx.AsyncClient) -> None:
    await admin_on_the_pages(app_client)
    refused = await app_client.post(
        "/admin/coupons", data={"name": "No token", "discount_type": "FIXED"}, headers=ENGLISH
    )
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    listed = await page(app_client, "/admin/coupons")
    assert "No token" not in listed

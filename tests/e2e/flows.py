"""What outside users do to a running haot deployment, end to end, over HTTP only.

Each flow is a plain ``async`` function taking a ``Deployment`` (a base URL): it knows nothing of
the processes behind it, so the same flows run against the all-in-one server and against the
split deployment behind its gateway. Each flow makes everything it needs with unique names (its
lodging as the seeded host, its guests by sign-up, its coupons, events and points as the seeded
admin) and never relies on the demo lodgings or on another flow. Anything asynchronous (events
between contexts, search, webhooks) is polled with a deadline, failing with what was last seen;
no answer anywhere may be a 5xx.

Only constants come from haot itself: the demo password, the fake PortOne's published API secret
and the default point earn rate (the deployments under test run with the defaults).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import parse_qs, urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx

from haot.platform.settings import FAKE_PORTONE_API_SECRET, Settings
from haot.seed import DEMO_PASSWORD
from tests.support.deployment import Deployment

T = TypeVar("T")

API = "/api/v1"
SEOUL = ZoneInfo("Asia/Seoul")
ADMIN_EMAIL = "admin@haot.dev"
HOST_EMAIL = "host1@haot.dev"
GUEST_PASSWORD = "e2e-guest-password-1"
POLL_TIMEOUT_SECONDS = 20.0
POLL_INTERVAL_SECONDS = 0.2
# HAOT_POINT_EARN_RATE_PERCENT as the deployments under test leave it: the default.
EARN_RATE_PERCENT = Settings.model_fields["point_earn_rate_percent"].default
PROBLEM_JSON = "application/problem+json"


# --- plumbing ------------------------------------------------------------------------------------


def seoul_today() -> date:
    """Calendar dates are Asia/Seoul's (SPEC)."""
    return datetime.now(SEOUL).date()


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


async def poll(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    what: str,
    timeout: float = POLL_TIMEOUT_SECONDS,
) -> T:
    """``probe()`` until ``done`` holds of its answer; after ``timeout`` seconds, fail with the
    answer last seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await probe()
        if done(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout:.0f}s; last seen: {seen!r}")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


def expect(response: httpx.Response, status: int) -> Any:
    """The JSON body of an answer that must have ``status``."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: expected {status}, got "
        f"{response.status_code}: {response.text[:1000]}"
    )
    return response.json() if response.content else None


def problem_code(response: httpx.Response) -> str:
    """The stable machine ``code`` of a problem+json answer."""
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith(PROBLEM_JSON), (
        f"{response.request.url}: {response.status_code} is not problem+json ({content_type}): "
        f"{response.text[:500]}"
    )
    body = response.json()
    assert body.get("status") == response.status_code, body
    code: str = body["code"]
    return code


@dataclass(frozen=True)
class Account:
    email: str
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Listing:
    """A lodging a flow made: one room type, open for ``nights`` nights from ``start``."""

    lodging_id: str
    room_type_id: str
    district: str
    rooms: int
    price: int
    start: date
    nights: int


class _Page(HTMLParser):
    """What a browser takes from a page: each form's action and the values it would submit,
    and every element's attributes by id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self.by_id: dict[str, dict[str, str]] = {}
        self._form: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.by_id[found["id"]] = found
        if tag == "form":
            self._form = found.get("id", f"form-{len(self.forms)}")
            self.forms[self._form] = (found.get("action", ""), {})
        elif tag == "input" and self._form is not None and found.get("name"):
            self.forms[self._form][1][found["name"]] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


class Outside:
    """One outside client of a deployment: plain HTTP at its base URL, every 5xx recorded."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.server_errors: list[str] = []
        self.http = httpx.AsyncClient(
            base_url=deployment.base_url,
            timeout=30.0,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            event_hooks={"response": [self._record]},
        )

    async def _record(self, response: httpx.Response) -> None:
        if response.status_code >= 500:
            await response.aread()
            request = response.request
            self.server_errors.append(
                f"{request.method} {request.url} -> {response.status_code}: {response.text[:500]}"
            )

    # -- accounts ---------------------------------------------------------------------------

    async def log_in(self, email: str, password: str = DEMO_PASSWORD) -> Account:
        pair = expect(
            await self.http.post(f"{API}/auth/login", json={"email": email, "password": password}),
            200,
        )
        assert pair["token_type"].lower() == "bearer", pair
        token = pair["access_token"]
        me = expect(
            await self.http.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"}),
            200,
        )
        assert me["email"] == email, me
        return Account(email=email, user_id=me["id"], token=token)

    async def sign_up(self, tag: str, who: str) -> Account:
        """A new guest (role USER), logged in."""
        email = f"e2e-{tag}-{who}@e2e.haot.dev"
        user = expect(
            await self.http.post(
                f"{API}/auth/signup",
                json={"email": email, "password": GUEST_PASSWORD, "name": f"E2E {who}"},
            ),
            201,
        )
        assert user["role"] == "USER", user
        account = await self.log_in(email, GUEST_PASSWORD)
        assert account.user_id == user["id"]
        return account

    # -- lodgings ---------------------------------------------------------------------------

    async def open_lodging(
        self,
        host: Account,
        tag: str,
        *,
        rooms: int,
        start: date,
        nights: int,
        price: int,
        policy: list[dict[str, int]],
    ) -> Listing:
        """A lodging of ``host`` in a district of its own, with one room type of ``rooms``
        rooms open at ``price`` a night for ``nights`` nights from ``start``."""
        district = f"e2e-{tag}"
        lodging = expect(
            await self.http.post(
                f"{API}/host/lodgings",
                headers=host.auth,
                json={
                    "name": f"E2E Stay {tag}",
                    "description": "Made by an end-to-end flow",
                    "address": f"{tag} E2E-ro, Seoul",
                    "region": {"city": "Seoul", "district": district},
                    "latitude": 37.5665,
                    "longitude": 126.978,
                    "amenities": ["wifi"],
                    "max_guests": 4,
                    "cancellation_policy": policy,
                },
            ),
            201,
        )
        assert lodging["cancellation_policy"] == policy, lodging
        room_type = expect(
            await self.http.post(
                f"{API}/host/lodgings/{lodging['id']}/room-types",
                headers=host.auth,
                json={"name": "Double", "capacity": 2, "total_rooms": rooms},
            ),
            201,
        )
        opened = expect(
            await self.http.put(
                f"{API}/host/room-types/{room_type['id']}/calendar",
                headers=host.auth,
                json={
                    "start": start.isoformat(),
                    "end": (start + timedelta(days=nights)).isoformat(),
                    "price": price,
                },
            ),
            200,
        )
        assert [(d["price"], d["total"]) for d in opened["days"]] == [(price, rooms)] * nights
        return Listing(
            lodging_id=lodging["id"],
            room_type_id=room_type["id"],
            district=district,
            rooms=rooms,
            price=price,
            start=start,
            nights=nights,
        )

    async def host_nights(self, host: Account, listing: Listing) -> dict[str, dict[str, Any]]:
        """The host's calendar of the listing's nights, by date: price, total, held, sold."""
        return await self._nights(
            listing,
            lambda month: self.http.get(
                f"{API}/host/room-types/{listing.room_type_id}/calendar",
                params={"month": month},
                headers=host.auth,
            ),
            lambda body: body["days"],
        )

    async def public_nights(self, listing: Listing) -> dict[str, dict[str, Any]]:
        """The public calendar of the listing's nights, by date: price, available, closed."""

        def days(body: dict[str, Any]) -> list[dict[str, Any]]:
            (room_type,) = [
                r for r in body["room_types"] if r["room_type_id"] == listing.room_type_id
            ]
            found: list[dict[str, Any]] = room_type["days"]
            return found

        return await self._nights(
            listing,
            lambda month: self.http.get(
                f"{API}/lodgings/{listing.lodging_id}/calendar", params={"month": month}
            ),
            days,
        )

    async def _nights(
        self,
        listing: Listing,
        fetch: Callable[[str], Awaitable[httpx.Response]],
        days: Callable[[dict[str, Any]], list[dict[str, Any]]],
    ) -> dict[str, dict[str, Any]]:
        wanted = [(listing.start + timedelta(days=i)).isoformat() for i in range(listing.nights)]
        by_date: dict[str, dict[str, Any]] = {}
        for month in sorted({night[:7] for night in wanted}):
            for day in days(expect(await fetch(month), 200)):
                by_date[day["date"]] = day
        return {night: by_date.get(night, {}) for night in wanted}

    # -- booking ----------------------------------------------------------------------------

    async def reservation(self, guest: Account, reservation_id: str) -> dict[str, Any]:
        found: dict[str, Any] = expect(
            await self.http.get(f"{API}/reservations/{reservation_id}", headers=guest.auth), 200
        )
        return found

    async def reservation_in(
        self, guest: Account, reservation_id: str, status: str
    ) -> dict[str, Any]:
        return await poll(
            lambda: self.reservation(guest, reservation_id),
            lambda r: r["status"] == status,
            f"reservation {reservation_id} {status}",
        )

    async def book(
        self, guest: Account, stay: dict[str, Any], key: str
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """``POST /reservations`` with an Idempotency-Key; must be a new PENDING reservation."""
        response = await self.http.post(
            f"{API}/reservations", json=stay, headers={**guest.auth, "Idempotency-Key": key}
        )
        created: dict[str, Any] = expect(response, 201)
        assert created["status"] == "PENDING", created
        assert created["payment_id"], created
        assert created["checkout_url"], created
        assert datetime.fromisoformat(created["expires_at"]) > datetime.now(UTC), created
        return response, created

    async def pay_at_checkout(self, created: dict[str, Any]) -> str:
        """What the guest's browser does with ``checkout_url``: follow it (haot pre-registers the
        amount, then sends the browser to the gateway's checkout page), read the page, submit its
        approve form, follow the redirect back to haot. Answers the URL it came back to."""
        payment_id: str = created["payment_id"]
        checkout_url: str = created["checkout_url"]
        base = self.deployment.base_url
        assert checkout_url.startswith(f"{base}/"), (
            f"checkout_url {checkout_url} is not on the deployment's public address {base}"
        )
        # The payment id is the credential here, as on PortOne's own checkout: no bearer token.
        redirect = await self.http.get(checkout_url)
        assert redirect.status_code == 303, (redirect.status_code, redirect.text[:500])
        page_url = urljoin(checkout_url, redirect.headers["location"])
        page = await self.http.get(page_url)
        assert page.status_code == 200, (page_url, page.status_code, page.text[:500])
        assert page.headers["content-type"].startswith("text/html"), page.headers
        parsed = _Page()
        parsed.feed(page.text)
        assert parsed.by_id.get("payment-id") is not None, page.text[:2000]
        assert parsed.by_id["amount"]["data-amount"] == str(created["amount"]), page.text[:2000]
        assert "approve-form" in parsed.forms, f"no approve form on {page_url}: {page.text[:2000]}"
        action, fields = parsed.forms["approve-form"]
        approve_url = urljoin(page_url, action)
        # A browser submits every named input of the form: the hidden return URL, and the
        # "other amount" field left empty.
        done = await self.http.post(approve_url, data={**fields, "amount": ""})
        assert done.status_code == 303, (approve_url, done.status_code, done.text[:500])
        back = urljoin(approve_url, done.headers["location"])
        parts = urlsplit(back)
        assert f"{parts.scheme}://{parts.netloc}" == base, back
        assert parts.path == f"/payments/{payment_id}/return", back
        assert parse_qs(parts.query)["paymentId"] == [payment_id], back
        # The browser lands there (without a web session: sent on to log in), never on an error.
        landed = await self.http.get(back, follow_redirects=True)
        assert landed.status_code == 200, (back, landed.status_code, landed.text[:500])
        return back

    async def complete(self, guest: Account, payment_id: str) -> dict[str, Any]:
        """What the return page asks of the API: complete the payment (the server re-queries
        the gateway)."""
        payment: dict[str, Any] = expect(
            await self.http.post(f"{API}/payments/{payment_id}/complete", headers=guest.auth),
            200,
        )
        assert payment["status"] == "PAID", payment
        return payment

    async def booked_and_paid(
        self, guest: Account, stay: dict[str, Any], key: str
    ) -> dict[str, Any]:
        """Booked, paid at the checkout, completed: the CONFIRMED reservation."""
        _, created = await self.book(guest, stay, key)
        await self.pay_at_checkout(created)
        await self.complete(guest, created["payment_id"])
        return await self.reservation_in(guest, created["id"], "CONFIRMED")

    # -- wallet -----------------------------------------------------------------------------

    async def points(self, account: Account) -> dict[str, Any]:
        balance: dict[str, Any] = expect(
            await self.http.get(f"{API}/points", headers=account.auth), 200
        )
        return balance

    async def points_are(self, account: Account, balance: int, held: int = 0) -> dict[str, Any]:
        return await poll(
            lambda: self.points(account),
            lambda p: (p["balance"], p["held"]) == (balance, held),
            f"points of {account.email}: balance {balance}, held {held}",
        )

    async def my_coupons(self, account: Account) -> list[dict[str, Any]]:
        page = expect(
            await self.http.get(f"{API}/coupons", params={"size": 100}, headers=account.auth),
            200,
        )
        items: list[dict[str, Any]] = page["items"]
        return items

    async def coupon_is(
        self, account: Account, user_coupon_id: str, status: str, reservation_id: str | None
    ) -> dict[str, Any]:
        def mine(coupons: list[dict[str, Any]]) -> dict[str, Any]:
            return next((c for c in coupons if c["id"] == user_coupon_id), {})

        coupons = await poll(
            lambda: self.my_coupons(account),
            lambda cs: (
                (mine(cs).get("status"), mine(cs).get("reservation_id")) == (status, reservation_id)
            ),
            f"coupon {user_coupon_id} {status} for reservation {reservation_id}",
        )
        return mine(coupons)

    async def create_coupon(self, admin: Account, name: str, **fields: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = {
            "name": name,
            "discount_type": "FIXED",
            "discount_value": 10_000,
            "min_order_amount": 0,
            "valid_from": (now - timedelta(minutes=1)).isoformat(),
            "valid_to": (now + timedelta(days=60)).isoformat(),
            **fields,
        }
        coupon: dict[str, Any] = expect(
            await self.http.post(f"{API}/admin/coupons", json=body, headers=admin.auth), 201
        )
        assert coupon["active"] is True, coupon
        return coupon


@asynccontextmanager
async def outside(deployment: Deployment) -> AsyncIterator[Outside]:
    """An outside client for one flow; at the end, no answer may have been a 5xx."""
    client = Outside(deployment)
    try:
        async with client.http:
            yield client
    except BaseException as exc:
        if client.server_errors:
            exc.add_note("5xx answers during the flow:\n" + "\n".join(client.server_errors))
        raise
    assert not client.server_errors, "5xx answers during the flow:\n" + "\n".join(
        client.server_errors
    )


def stay_of(listing: Listing, *, guests: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "room_type_id": listing.room_type_id,
        "check_in": listing.start.isoformat(),
        "check_out": (listing.start + timedelta(days=listing.nights)).isoformat(),
        "guests": guests,
        **extra,
    }


POLICY = [
    {"days_before": 7, "refund_percent": 100},
    {"days_before": 3, "refund_percent": 50},
    {"days_before": 0, "refund_percent": 0},
]


# --- the flows -----------------------------------------------------------------------------------


async def book_and_pay(deployment: Deployment) -> None:
    """A guest finds a new lodging by region and dates, books it and pays at the gateway's
    checkout page like a browser; PortOne's webhook alone confirms it; the nights are sold; the
    same booking sent again with its Idempotency-Key is the same reservation."""
    tag = new_tag()
    async with outside(deployment) as api:
        host = await api.log_in(HOST_EMAIL)
        guest = await api.sign_up(tag, "guest")
        listing = await api.open_lodging(
            host,
            tag,
            rooms=3,
            start=seoul_today() + timedelta(days=30),
            nights=2,
            price=91_000,
            policy=POLICY,
        )
        stay = stay_of(listing)

        search = {k: stay[k] for k in ("check_in", "check_out", "guests")}
        search["region"] = listing.district

        async def results() -> list[dict[str, Any]]:
            page = expect(await api.http.get(f"{API}/lodgings", params=search), 200)
            items: list[dict[str, Any]] = page["items"]
            return items

        (found,) = await poll(
            results,
            lambda items: [i["id"] for i in items] == [listing.lodging_id],
            f"the new lodging alone in a search of region {listing.district}",
        )
        assert found["room_type_id"] == listing.room_type_id, found
        assert found["total_price"] == 2 * 91_000, found
        assert [(n["date"], n["price"]) for n in found["nights"]] == [
            (listing.start.isoformat(), 91_000),
            ((listing.start + timedelta(days=1)).isoformat(), 91_000),
        ], found

        quote = expect(
            await api.http.post(f"{API}/reservations/quote", json=stay, headers=guest.auth), 200
        )
        assert (quote["subtotal"], quote["coupon_discount"], quote["points_used"]) == (
            182_000,
            0,
            0,
        ), quote
        assert quote["amount"] == 182_000, quote

        key = f"e2e-{tag}-book"
        _, created = await api.book(guest, stay, key)
        assert created["amount"] == quote["amount"], created

        # Paid in the browser, and nothing else: the gateway's webhook confirms the booking.
        await api.pay_at_checkout(created)
        confirmed = await api.reservation_in(guest, created["id"], "CONFIRMED")
        assert confirmed["amount"] == 182_000, confirmed
        assert confirmed["payment_id"] == created["payment_id"], confirmed
        assert confirmed["confirmed_at"] is not None, confirmed
        assert confirmed["checkout_url"] is None, confirmed
        payment = expect(
            await api.http.get(f"{API}/payments/{created['payment_id']}", headers=guest.auth), 200
        )
        assert (payment["status"], payment["amount"], payment["reservation_id"]) == (
            "PAID",
            182_000,
            created["id"],
        ), payment

        # Both nights sold: the host sees them sold (none held), the public one room fewer.
        await poll(
            lambda: api.host_nights(host, listing),
            lambda nights: all(
                (n.get("total"), n.get("sold"), n.get("held")) == (3, 1, 0) for n in nights.values()
            ),
            "both nights sold once, none held",
        )
        public = await api.public_nights(listing)
        assert all(n.get("available") == 2 for n in public.values()), public

        mine = expect(await api.http.get(f"{API}/reservations", headers=guest.auth), 200)
        assert [(r["id"], r["status"]) for r in mine["items"]] == [(created["id"], "CONFIRMED")]

        # The host sees who is coming: the name the guest signed up with, which the identity
        # context announced and the reservation context keeps (over the broker when split).
        async def hosts_row() -> dict[str, Any] | None:
            page = expect(
                await api.http.get(
                    f"{API}/host/reservations",
                    params={"lodging_id": listing.lodging_id},
                    headers=host.auth,
                ),
                200,
            )
            rows = [r for r in page["items"] if r["id"] == created["id"]]
            return rows[0] if rows else None

        await poll(
            hosts_row,
            lambda row: row is not None and row["guest_name"] == "E2E guest",
            "the guest's name on the host's reservation",
        )

        # The same booking again with the same key (a client retrying): the same reservation.
        again, replayed = await api.book(guest, stay, key)
        assert replayed == created, (replayed, created)
        assert again.headers.get("idempotent-replayed") == "true", again.headers
        mine = expect(await api.http.get(f"{API}/reservations", headers=guest.auth), 200)
        assert mine["total"] == 1, mine
        nights = await api.host_nights(host, listing)
        assert all(n["sold"] == 1 and n["held"] == 0 for n in nights.values()), nights


async def last_room_race(deployment: Deployment) -> None:
    """Twenty guests book the last room for the same night at once: one gets it, nineteen are
    told it is sold out (409 ``sold_out``), and the night shows none left."""
    tag = new_tag()
    async with outside(deployment) as api:
        host = await api.log_in(HOST_EMAIL)
        listing = await api.open_lodging(
            host,
            tag,
            rooms=1,
            start=seoul_today() + timedelta(days=40),
            nights=1,
            price=77_000,
            policy=POLICY,
        )
        guests = await asyncio.gather(*(api.sign_up(tag, f"racer{i}") for i in range(20)))
        stay = stay_of(listing)
        answers = await asyncio.gather(
            *(
                api.http.post(
                    f"{API}/reservations",
                    json=stay,
                    headers={**guest.auth, "Idempotency-Key": f"e2e-{tag}-race-{i}"},
                )
                for i, guest in enumerate(guests)
            )
        )
        seen = Counter(a.status_code for a in answers)
        assert seen == Counter({201: 1, 409: 19}), (seen, [a.text[:200] for a in answers])
        codes = Counter(problem_code(a) for a in answers if a.status_code == 409)
        assert codes == Counter({"sold_out": 19}), codes
        ((winner, won),) = [(g, a) for g, a in zip(guests, answers, strict=True) if a.is_success]
        created = won.json()
        assert created["status"] == "PENDING", created
        assert created["amount"] == 77_000, created
        assert (await api.reservation(winner, created["id"]))["status"] == "PENDING"

        public = await api.public_nights(listing)
        assert [n.get("available") for n in public.values()] == [0], public
        nights = await api.host_nights(host, listing)
        assert [(n["total"], n["held"] + n["sold"]) for n in nights.values()] == [(1, 1)], nights

        # Still sold out afterwards, for anyone.
        late = await api.http.post(
            f"{API}/reservations",
            json=stay,
            headers={**guests[0 if winner is not guests[0] else 1].auth, "Idempotency-Key": tag},
        )
        assert late.status_code == 409, late.text
        assert problem_code(late) == "sold_out"


async def coupon_drop(deployment: Deployment) -> None:
    """A first-come-first-served coupon event of 5: thirty guests claim at once, each twice;
    exactly five distinct guests get the coupon, every other claim is refused with a stable
    code, and the event reports five issued and closes as exhausted."""
    tag = new_tag()
    async with outside(deployment) as api:
        admin = await api.log_in(ADMIN_EMAIL)
        coupon = await api.create_coupon(admin, f"E2E drop {tag}", discount_value=3_000)
        now = datetime.now(UTC)
        event = expect(
            await api.http.post(
                f"{API}/admin/coupon-events",
                headers=admin.auth,
                json={
                    "coupon_id": coupon["id"],
                    "name": f"E2E drop {tag}",
                    "starts_at": (now - timedelta(seconds=5)).isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "quantity": 5,
                },
            ),
            201,
        )
        assert (event["status"], event["quantity"], event["issued"], event["remaining"]) == (
            "OPEN",
            5,
            0,
            5,
        ), event
        public = expect(await api.http.get(f"{API}/coupon-events/{event['id']}"), 200)
        assert (public["status"], public["remaining"]) == ("OPEN", 5), public

        guests = await asyncio.gather(*(api.sign_up(tag, f"claimer{i}") for i in range(30)))
        attempts = [guest for guest in guests for _ in range(2)]
        answers = await asyncio.gather(
            *(
                api.http.post(f"{API}/coupon-events/{event['id']}/claims", headers=guest.auth)
                for guest in attempts
            )
        )
        seen = Counter(a.status_code for a in answers)
        assert set(seen) <= {202, 409}, (seen, [a.text[:200] for a in answers])
        accepted = [(g, a.json()) for g, a in zip(attempts, answers, strict=True) if a.is_success]
        assert len(accepted) == 5, seen
        winners = {g.user_id for g, _ in accepted}
        assert len(winners) == 5, "a guest was admitted twice"
        assert all(body["status"] == "ACCEPTED" and body["claim_id"] for _, body in accepted)
        refusals = Counter(problem_code(a) for a in answers if a.status_code == 409)
        assert set(refusals) <= {"coupon_sold_out", "coupon_already_claimed"}, refusals
        assert sum(refusals.values()) == 55, refusals

        # Each admitted claim is issued, moments later.
        issued: dict[str, str] = {}
        for guest, body in accepted:
            claim = await poll(
                partial(
                    api.http.get, f"{API}/coupon-claims/{body['claim_id']}", headers=guest.auth
                ),
                lambda r: r.status_code == 200 and r.json()["status"] != "ACCEPTED",
                f"claim {body['claim_id']} settled",
            )
            settled = claim.json()
            assert settled["status"] == "ISSUED", settled
            assert settled["event_id"] == event["id"], settled
            issued[guest.user_id] = settled["user_coupon_id"]

        # Exactly the five winners hold the coupon, once each; nobody else has it.
        holdings = await asyncio.gather(*(api.my_coupons(guest) for guest in guests))
        for guest, coupons in zip(guests, holdings, strict=True):
            ours = [c for c in coupons if c["coupon_id"] == coupon["id"]]
            if guest.user_id in winners:
                assert [(c["id"], c["status"], c["event_id"]) for c in ours] == [
                    (issued[guest.user_id], "ISSUED", event["id"])
                ], ours
            else:
                assert ours == [], (guest.email, ours)

        async def admin_view() -> dict[str, Any]:
            page_number = 1
            while True:
                page = expect(
                    await api.http.get(
                        f"{API}/admin/coupon-events",
                        params={"page": page_number, "size": 100},
                        headers=admin.auth,
                    ),
                    200,
                )
                for item in page["items"]:
                    if item["id"] == event["id"]:
                        found: dict[str, Any] = item
                        return found
                assert page_number * 100 < page["total"], f"event {event['id']} not listed"
                page_number += 1

        final = await poll(
            admin_view,
            lambda e: (
                (e["issued"], e["remaining"], e["status"], e["closed_reason"])
                == (5, 0, "CLOSED", "EXHAUSTED")
            ),
            "the event: 5 issued, closed as exhausted",
        )
        assert final["quantity"] == 5, final

        # After the drop: a loser's claim is told it is sold out.
        loser = next(g for g in guests if g.user_id not in winners)
        late = await api.http.post(f"{API}/coupon-events/{event['id']}/claims", headers=loser.auth)
        assert late.status_code == 409, late.text
        assert problem_code(late) == "coupon_sold_out"


async def cancel_with_refund(deployment: Deployment) -> None:
    """A guest pays a booking with a coupon and points, then cancels 20 days ahead under an
    explicit policy (80% from 14 days before): the payment is refunded 80% of what was paid (at
    haot and at PortOne), the coupon is the guest's again, 80% of the points come back, and the
    nights are free again."""
    tag = new_tag()
    price, nights, discount, granted, points_used, percent = 123_457, 2, 10_000, 5_000, 3_001, 80
    policy = [
        {"days_before": 30, "refund_percent": 100},
        {"days_before": 14, "refund_percent": percent},
        {"days_before": 0, "refund_percent": 0},
    ]
    subtotal = price * nights
    amount = subtotal - discount - points_used
    refund = amount * percent // 100  # whole won, rounded down
    points_back = points_used * percent // 100
    async with outside(deployment) as api:
        host = await api.log_in(HOST_EMAIL)
        admin = await api.log_in(ADMIN_EMAIL)
        guest = await api.sign_up(tag, "canceller")
        listing = await api.open_lodging(
            host,
            tag,
            rooms=2,
            start=seoul_today() + timedelta(days=20),
            nights=nights,
            price=price,
            policy=policy,
        )
        coupon = await api.create_coupon(
            admin, f"E2E refund {tag}", discount_value=discount, lodging_id=listing.lodging_id
        )
        handed = expect(
            await api.http.post(
                f"{API}/admin/coupons/{coupon['id']}/issue",
                json={"user_ids": [guest.user_id]},
                headers=admin.auth,
            ),
            201,
        )
        (user_coupon_id,) = handed["issued"]
        await api.coupon_is(guest, user_coupon_id, "ISSUED", None)
        expect(
            await api.http.post(
                f"{API}/admin/points/grants",
                json={"user_id": guest.user_id, "amount": granted, "reason": f"e2e {tag}"},
                headers=admin.auth,
            ),
            201,
        )
        await api.points_are(guest, granted)

        stay = stay_of(listing, user_coupon_id=user_coupon_id, points=points_used)
        quote = expect(
            await api.http.post(f"{API}/reservations/quote", json=stay, headers=guest.auth), 200
        )
        assert (
            quote["subtotal"],
            quote["coupon_discount"],
            quote["points_used"],
            quote["amount"],
        ) == (subtotal, discount, points_used, amount), quote

        _, created = await api.book(guest, stay, f"e2e-{tag}-refund")
        assert created["amount"] == amount, created
        await api.coupon_is(guest, user_coupon_id, "RESERVED", created["id"])
        await api.points_are(guest, granted - points_used, held=points_used)

        await api.pay_at_checkout(created)
        await api.complete(guest, created["payment_id"])
        confirmed = await api.reservation_in(guest, created["id"], "CONFIRMED")
        assert (confirmed["coupon_discount"], confirmed["points_used"]) == (discount, points_used)
        await api.coupon_is(guest, user_coupon_id, "USED", created["id"])
        await api.points_are(guest, granted - points_used)

        terms = expect(
            await api.http.get(
                f"{API}/reservations/{created['id']}/cancellation", headers=guest.auth
            ),
            200,
        )
        assert terms == {
            "refund_percent": percent,
            "refund_amount": refund,
            "points_refund": points_back,
        }, terms
        cancelled = expect(
            await api.http.post(
                f"{API}/reservations/{created['id']}/cancel",
                json={"reason": "plans changed"},
                headers=guest.auth,
            ),
            200,
        )
        assert (cancelled["status"], cancelled["refund_amount"], cancelled["cancelled_by"]) == (
            "CANCELLED",
            refund,
            "GUEST",
        ), cancelled
        assert (await api.reservation(guest, created["id"]))["status"] == "CANCELLED"

        payment_path = f"{API}/payments/{created['payment_id']}"
        payment = await poll(
            lambda: api.http.get(payment_path, headers=guest.auth),
            lambda r: r.status_code == 200 and r.json()["cancelled_amount"] != 0,
            f"payment {created['payment_id']} refunded",
        )
        assert (
            payment.json()["status"],
            payment.json()["amount"],
            payment.json()["cancelled_amount"],
        ) == ("PARTIALLY_CANCELLED", amount, refund), payment.json()
        # PortOne (the built-in fake, over its V2 API) paid the same back.
        at_gateway = expect(
            await api.http.get(
                f"/fake-portone/payments/{created['payment_id']}",
                headers={"Authorization": f"PortOne {FAKE_PORTONE_API_SECRET}"},
            ),
            200,
        )
        assert (at_gateway["status"], at_gateway["amount"]["cancelled"]) == (
            "PARTIAL_CANCELLED",
            refund,
        ), at_gateway

        restored = await api.coupon_is(guest, user_coupon_id, "ISSUED", None)
        assert restored["used_at"] is None, restored
        await api.points_are(guest, granted - points_used + points_back)
        history = expect(
            await api.http.get(
                f"{API}/points/history", params={"type": "CANCEL_USE"}, headers=guest.auth
            ),
            200,
        )
        assert [(e["amount"], e["reservation_id"]) for e in history["items"]] == [
            (points_back, created["id"])
        ], history

        await poll(
            lambda: api.public_nights(listing),
            lambda ns: all(n.get("available") == 2 for n in ns.values()),
            "the nights free again",
        )
        again = await api.http.post(
            f"{API}/reservations/{created['id']}/cancel", headers=guest.auth
        )
        assert again.status_code == 409, again.text
        assert problem_code(again) == "invalid_state"


async def points_after_completion(deployment: Deployment) -> None:
    """A confirmed stay completes when the admin runs ``complete-stays`` as of after its
    check-out; the guest then earns the configured share of what they paid, once."""
    tag = new_tag()
    price, nights = 88_800, 2
    paid = price * nights
    earned = int(Decimal(paid) * Decimal(str(EARN_RATE_PERCENT)) // 100)
    assert earned > 0
    async with outside(deployment) as api:
        host = await api.log_in(HOST_EMAIL)
        admin = await api.log_in(ADMIN_EMAIL)
        guest = await api.sign_up(tag, "sleeper")
        listing = await api.open_lodging(
            host,
            tag,
            rooms=1,
            start=seoul_today() + timedelta(days=1),
            nights=nights,
            price=price,
            policy=POLICY,
        )
        confirmed = await api.booked_and_paid(guest, stay_of(listing), f"e2e-{tag}-stay")
        assert confirmed["amount"] == paid, confirmed
        assert (await api.points(guest))["balance"] == 0

        check_out = listing.start + timedelta(days=nights)
        as_of = f"{check_out.isoformat()}T12:00:00+09:00"  # after the 11:00 check-out
        job = f"{API}/admin/jobs/complete-stays/run"
        refused = await api.http.post(job, params={"as_of": as_of}, headers=guest.auth)
        assert refused.status_code == 403, refused.text
        assert problem_code(refused) == "forbidden"
        ran = expect(await api.http.post(job, params={"as_of": as_of}, headers=admin.auth), 200)
        assert ran["job"] == "complete-stays", ran
        assert ran["result"]["completed"] >= 1, ran

        completed = await api.reservation_in(guest, confirmed["id"], "COMPLETED")
        assert completed["completed_at"] is not None, completed
        await api.points_are(guest, earned)
        history = expect(
            await api.http.get(
                f"{API}/points/history", params={"type": "EARN"}, headers=guest.auth
            ),
            200,
        )
        assert [(e["amount"], e["reservation_id"]) for e in history["items"]] == [
            (earned, confirmed["id"])
        ], history

        # Run again: the stay is completed already and earns nothing more.
        again = expect(await api.http.post(job, params={"as_of": as_of}, headers=admin.auth), 200)
        assert again["job"] == "complete-stays", again
        assert (await api.reservation(guest, confirmed["id"]))["status"] == "COMPLETED"
        assert (await api.points(guest))["balance"] == earned

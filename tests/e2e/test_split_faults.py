"""Faults on the split deployment (issue 15, item 6): a context's processes killed in the middle
of bookings, and the broker killed while events are in flight. After each, once the part is back,
every booking ends consistent (confirmed, or compensated: expired or failed, with nights, points
and money given back), no night is sold twice, no event is lost or applied twice.

Killing is SIGKILL of the whole process group: nothing is flushed, no request is finished."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from haot.local_split import LocalSplit
from tests.e2e.flows import (
    ADMIN_EMAIL,
    API,
    HOST_EMAIL,
    POLICY,
    Account,
    Listing,
    Outside,
    expect,
    new_tag,
    poll,
    seoul_today,
    stay_of,
)
from tests.support.deployment import Deployment

GUESTS = 8
ROOMS = 3
GRANTED = 5_000
POINTS_PER_BOOKING = 1_000
FINAL = {"CONFIRMED", "EXPIRED", "FAILED", "CANCELLED"}
SETTLE_SECONDS = 60.0


@contextlib.asynccontextmanager
async def tolerant(deployment: Deployment) -> AsyncIterator[Outside]:
    """An outside client that expects 5xx while a part is down (the flows' client forbids them)."""
    client = Outside(deployment)
    async with client.http:
        yield client


async def until_answered(call: Any, *, seconds: float = SETTLE_SECONDS) -> httpx.Response:
    """``call()`` again until it answers below 500 (the part it needs is coming back)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            response: httpx.Response = await call()
            if response.status_code < 500:
                return response
        except httpx.TransportError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no answer below 500 within {seconds:.0f} s")
        await asyncio.sleep(0.5)


async def setting_up(api: Outside, tag: str, days_ahead: int) -> tuple[Listing, list[Account]]:
    """A lodging of ``ROOMS`` rooms for two nights, and ``GUESTS`` guests with points."""
    host = await api.log_in(HOST_EMAIL)
    admin = await api.log_in(ADMIN_EMAIL)
    listing = await api.open_lodging(
        host,
        tag,
        rooms=ROOMS,
        start=seoul_today() + timedelta(days=days_ahead),
        nights=2,
        price=50_000,
        policy=POLICY,
    )
    guests = list(await asyncio.gather(*(api.sign_up(tag, f"g{i}") for i in range(GUESTS))))
    for guest in guests:
        expect(
            await api.http.post(
                f"{API}/admin/points/grants",
                json={"user_id": guest.user_id, "amount": GRANTED, "reason": f"fault {tag}"},
                headers=admin.auth,
            ),
            201,
        )
    return listing, guests


async def booking(api: Outside, guest: Account, stay: dict[str, Any], key: str) -> int | str:
    """One booking attempt: its status code, or the transport error that ended it."""
    try:
        answer = await api.http.post(
            f"{API}/reservations", json=stay, headers={**guest.auth, "Idempotency-Key": key}
        )
    except httpx.TransportError as exc:
        return type(exc).__name__
    return answer.status_code


async def reservations_of(api: Outside, guest: Account) -> list[dict[str, Any]]:
    page = expect(
        await until_answered(lambda: api.http.get(f"{API}/reservations", headers=guest.auth)),
        200,
    )
    items: list[dict[str, Any]] = page["items"]
    return items


async def pay_what_is_pending(api: Outside, guests: list[Account]) -> None:
    """Each guest pays what is still PENDING, at the checkout page, then completes it as the
    return page does, and waits until the payment's event has decided it: confirmed, or (a hold
    lost with the process) refused and refunded."""
    for guest in guests:
        for reservation in await reservations_of(api, guest):
            if reservation["status"] != "PENDING" or not reservation.get("checkout_url"):
                continue
            await api.pay_at_checkout(reservation)
            await until_answered(
                lambda r=reservation, g=guest: api.http.post(
                    f"{API}/payments/{r['payment_id']}/complete", headers=g.auth
                )
            )
            await poll(
                lambda r=reservation, g=guest: api.reservation(g, r["id"]),
                lambda seen: seen["status"] != "PENDING",
                f"paid reservation {reservation['id']} decided",
                timeout=SETTLE_SECONDS,
            )


async def expire_the_rest(api: Outside) -> None:
    """Whatever is still PENDING expires (the job, as of a day later), and is compensated."""
    admin = await api.log_in(ADMIN_EMAIL)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    expect(
        await until_answered(
            lambda: api.http.post(
                f"{API}/admin/jobs/expire-holds/run", params={"as_of": later}, headers=admin.auth
            )
        ),
        200,
    )


async def consistent(api: Outside, listing: Listing, guests: list[Account]) -> int:
    """Every booking final; the nights sold exactly once per confirmed booking and none held;
    every guest's points and money as their confirmed bookings say. The confirmed count."""
    host = await api.log_in(HOST_EMAIL)

    async def everyone() -> dict[str, list[dict[str, Any]]]:
        return {g.user_id: await reservations_of(api, g) for g in guests}

    booked = await poll(
        everyone,
        lambda seen: all(r["status"] in FINAL for rs in seen.values() for r in rs),
        "every reservation final",
        timeout=SETTLE_SECONDS,
    )
    confirmed = {uid: [r for r in rs if r["status"] == "CONFIRMED"] for uid, rs in booked.items()}
    count = sum(len(rs) for rs in confirmed.values())
    assert count <= ROOMS, f"{count} confirmed bookings of {ROOMS} rooms: {booked}"
    await poll(
        lambda: api.host_nights(host, listing),
        lambda nights: all((n["sold"], n["held"]) == (count, 0) for n in nights.values()),
        f"both nights: {count} sold, none held",
        timeout=SETTLE_SECONDS,
    )
    for guest in guests:
        mine = confirmed[guest.user_id]
        spent = sum(r["points_used"] for r in mine)
        await poll(
            lambda g=guest: api.points(g),
            lambda p, s=spent: (p["balance"], p["held"]) == (GRANTED - s, 0),
            f"points of {guest.email}: {GRANTED - spent} left, none held",
            timeout=SETTLE_SECONDS,
        )
        for reservation in booked[guest.user_id]:
            if not reservation.get("payment_id"):
                continue
            if reservation["status"] == "CONFIRMED":
                payment = await payment_of(api, guest, reservation)
                assert (payment["status"], payment["amount"]) == (
                    "PAID",
                    reservation["amount"],
                ), (reservation, payment)
            else:  # no money kept for a booking that did not happen (a late payment is refunded)
                await poll(
                    lambda g=guest, r=reservation: payment_of(api, g, r),
                    lambda payment: payment["status"] != "PAID",
                    f"the payment of {reservation['status']} reservation {reservation['id']} "
                    "not kept",
                    timeout=SETTLE_SECONDS,
                )
    return count


async def payment_of(api: Outside, guest: Account, reservation: dict[str, Any]) -> dict[str, Any]:
    payment: dict[str, Any] = expect(
        await api.http.get(f"{API}/payments/{reservation['payment_id']}", headers=guest.auth), 200
    )
    return payment


def controls(deployment: Deployment) -> LocalSplit:
    assert deployment.split is not None
    return deployment.split


@pytest.mark.parametrize(
    ("victim", "days_ahead"), [("reservation", 60), ("point", 63), ("payment", 66)]
)
async def test_a_context_killed_mid_booking_leaves_every_booking_consistent(
    split_deployment: Deployment, victim: str, days_ahead: int
) -> None:
    split = controls(split_deployment)
    tag = new_tag()
    async with tolerant(split_deployment) as api:
        listing, guests = await setting_up(api, tag, days_ahead)
        stay = stay_of(listing, points=POINTS_PER_BOOKING)
        attempts = [
            asyncio.create_task(booking(api, guest, stay, f"fault-{tag}-{i}"))
            for i, guest in enumerate(guests)
        ]
        await asyncio.sleep(0.1)  # the bookings are on their way through the saga
        for part in (victim, f"{victim}-worker"):
            await asyncio.to_thread(split.kill, part)
        outcomes = await asyncio.gather(*attempts)
        for part in (victim, f"{victim}-worker"):
            split.launch(part)
        await asyncio.to_thread(split.wait_ready, [victim, f"{victim}-worker"])

        try:
            await pay_what_is_pending(api, guests)
            await expire_the_rest(api)
            await consistent(api, listing, guests)
        except AssertionError as failure:
            failure.add_note(f"what the {GUESTS} bookings were answered: {outcomes}")
            raise


async def test_the_broker_killed_and_restarted_loses_and_repeats_nothing(
    split_deployment: Deployment,
) -> None:
    """Bookings are paid while the broker is down: their events wait in each context's outbox.
    Restarted (its log kept in the object store), the broker delivers each once: every paid
    booking is confirmed, its nights sold once, its points spent once. Twice: a restarted broker
    that forgot how far a partition's log had grown would hand out used offsets again, which
    only the second outage shows (an S3 server without conditional writes did exactly that)."""
    split = controls(split_deployment)
    async with tolerant(split_deployment) as api:
        for outage, days_ahead in enumerate((70, 73)):
            await outage_while_paying(api, split, f"{new_tag()}{outage}", days_ahead)


async def outage_while_paying(api: Outside, split: LocalSplit, tag: str, days_ahead: int) -> None:
    listing, guests = await setting_up(api, tag, days_ahead)
    stay = stay_of(listing, points=POINTS_PER_BOOKING)
    created = []
    for i, guest in enumerate(guests[:ROOMS]):
        # A breaker an earlier fault opened may stay open for its 10 s: a fresh key for each
        # try, as a client does after a 503.
        attempt = iter(range(1000))
        answer = await until_answered(
            lambda g=guest, n=i, tries=attempt: api.http.post(
                f"{API}/reservations",
                json=stay,
                headers={**g.auth, "Idempotency-Key": f"broker-{tag}-{n}-{next(tries)}"},
            )
        )
        created.append((guest, expect(answer, 201)))
    # One booking's confirmation is on its way through the broker when it dies.
    _, first = created[0]
    await api.pay_at_checkout(first)
    await asyncio.to_thread(split.kill, "broker")
    for guest, reservation in created[1:]:
        await api.pay_at_checkout(reservation)
        payment = expect(
            await api.http.post(
                f"{API}/payments/{reservation['payment_id']}/complete", headers=guest.auth
            ),
            200,
        )
        assert payment["status"] == "PAID", payment  # committed: the outbox keeps the event
    await asyncio.sleep(1.0)  # relays find the broker gone and back off
    split.launch("broker")
    await asyncio.to_thread(split.wait_ready, ["broker"])

    for guest, reservation in created:
        await poll(
            lambda g=guest, r=reservation: api.reservation(g, r["id"]),
            lambda seen: seen["status"] == "CONFIRMED",
            f"reservation {reservation['id']} confirmed after the broker came back",
            timeout=SETTLE_SECONDS,
        )
    await expire_the_rest(api)
    assert await consistent(api, listing, guests) == ROOMS

"""What "fully confirmed or fully compensated" means, checked against the rows themselves.

After events have settled, for every reservation, hold, night and payment:

- a PENDING reservation holds its nights (hold HELD), a CONFIRMED or COMPLETED one has sold them
  (hold SOLD); any other reservation holds nothing (no hold, or RELEASED);
- a hold covers exactly its reservation's stay, and no live hold exists without a reservation;
- per night, ``held`` and ``sold`` equal the rooms of the HELD and SOLD holds covering it, and
  ``held + sold <= total``;
- a READY payment only exists for a PENDING reservation; a confirmed reservation with something to
  pay has a PAID payment of its amount;
- money: at the gateway, what is kept of a payment is the reservation's amount when it is
  confirmed or completed, ``amount - refund_amount`` when cancelled after confirmation, nothing
  otherwise; a PAID payment of a reservation that is not confirmed has a refund row unless it
  keeps its money (a 0 % cancellation); every refund row was executed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from haot.lodging.models import Hold, Night
from haot.payment.models import Payment, Refund
from haot.platform.container import Platform
from haot.reservation.models import Reservation
from tests.support.gateway import InMemoryGateway

LIVE_HOLD = {"PENDING": "HELD", "CONFIRMED": "SOLD", "COMPLETED": "SOLD"}
KEEPS_MONEY = ("CONFIRMED", "COMPLETED")


@dataclass
class Snapshot:
    reservations: list[Reservation]
    holds: list[Hold]
    nights: list[Night]
    payments: list[Payment]
    refunds: list[Refund]

    def reservation(self, reservation_id: uuid.UUID | str) -> Reservation:
        wanted = uuid.UUID(str(reservation_id))
        return next(r for r in self.reservations if r.id == wanted)

    def hold(self, reservation_id: uuid.UUID | str) -> Hold | None:
        wanted = uuid.UUID(str(reservation_id))
        return next((h for h in self.holds if h.reservation_id == wanted), None)

    def night(self, room_type_id: uuid.UUID, day: date) -> Night:
        return next(n for n in self.nights if n.room_type_id == room_type_id and n.date == day)

    def payment(self, reservation_id: uuid.UUID | str) -> Payment | None:
        wanted = uuid.UUID(str(reservation_id))
        return next((p for p in self.payments if p.reservation_id == wanted), None)

    def refunds_of(self, payment_id: str) -> list[Refund]:
        return [r for r in self.refunds if r.payment_id == payment_id]


async def snapshot(platform: Platform) -> Snapshot:
    async with platform.databases.sessions_for("reservation")() as session:
        reservations = list((await session.scalars(select(Reservation))).all())
    async with platform.databases.sessions_for("lodging")() as session:
        holds = list((await session.scalars(select(Hold))).all())
        nights = list((await session.scalars(select(Night))).all())
    async with platform.databases.sessions_for("payment")() as session:
        payments = list((await session.scalars(select(Payment))).all())
        refunds = list((await session.scalars(select(Refund))).all())
    return Snapshot(reservations, holds, nights, payments, refunds)


def _covers(hold: Hold, day: date) -> bool:
    return hold.check_in <= day < hold.check_out


async def assert_consistent(
    platform: Platform, gateway: InMemoryGateway | None = None, *, mid_saga: bool = False
) -> Snapshot:
    """Raise AssertionError listing every broken invariant; returns the snapshot checked.
    ``mid_saga``: a PENDING reservation may not have held its nights yet (a crashed saga)."""
    snap = await snapshot(platform)
    problems: list[str] = []
    by_id = {r.id: r for r in snap.reservations}
    holds = {h.reservation_id: h for h in snap.holds}

    for r in snap.reservations:
        hold = holds.get(r.id)
        want = LIVE_HOLD.get(r.status)
        have = hold.status if hold else None
        if mid_saga and r.status == "PENDING" and have is None:
            pass
        elif want is not None and have != want:
            problems.append(f"{r.status} reservation {r.id} has hold {have}, expected {want}")
        if want is None and have not in (None, "RELEASED"):
            problems.append(f"{r.status} reservation {r.id} still has a {have} hold")
        covered = (hold.room_type_id, hold.check_in, hold.check_out) if hold else None
        if have not in (None, "RELEASED") and covered != (r.room_type_id, r.check_in, r.check_out):
            problems.append(f"hold of {r.id} does not cover exactly its stay")

    for hold in snap.holds:
        if hold.status != "RELEASED" and hold.reservation_id not in by_id:
            problems.append(f"{hold.status} hold {hold.reservation_id} has no reservation")

    for night in snap.nights:
        covering = [h for h in snap.holds if h.room_type_id == night.room_type_id]
        held = sum(h.rooms for h in covering if h.status == "HELD" and _covers(h, night.date))
        sold = sum(h.rooms for h in covering if h.status == "SOLD" and _covers(h, night.date))
        if (night.held, night.sold) != (held, sold):
            problems.append(
                f"night {night.date} of {night.room_type_id}: held/sold "
                f"{night.held}/{night.sold}, holds say {held}/{sold}"
            )
        if night.held + night.sold > night.total:
            problems.append(f"night {night.date} oversold: {night.held}+{night.sold}>{night.total}")

    payments = {p.reservation_id: p for p in snap.payments}
    for r in snap.reservations:
        payment = payments.get(r.id)
        paid = payment is not None and payment.status == "PAID" and payment.id == r.payment_id
        if r.status in KEEPS_MONEY and r.amount > 0 and not paid:
            problems.append(
                f"{r.status} reservation {r.id} has payment "
                f"{payment.status if payment else None}, expected PAID"
            )
        if payment is None:
            continue
        if payment.status == "READY" and r.status != "PENDING":
            problems.append(f"READY payment {payment.id} for a {r.status} reservation")
        refunds = snap.refunds_of(payment.id)
        was_confirmed = r.confirmed_at is not None
        keeps = r.status in KEEPS_MONEY or (
            r.status == "CANCELLED" and was_confirmed and not r.refund_amount
        )
        if payment.status in ("PAID", "PARTIALLY_CANCELLED") and not keeps and not refunds:
            problems.append(f"{payment.status} payment {payment.id} of a {r.status} reservation")
        for refund in refunds:
            if refund.status != "DONE":
                problems.append(f"refund {refund.key} is {refund.status}")
        if gateway is not None and payment.id in gateway.payments:
            record = gateway.payments[payment.id]
            kept = record.paid - record.cancelled
            if r.status in KEEPS_MONEY:
                expected = r.amount
            elif r.status == "CANCELLED" and was_confirmed:
                expected = r.amount - (r.refund_amount or 0)
            else:
                expected = 0
            if kept != expected:
                problems.append(
                    f"gateway keeps {kept} of {payment.id} for a {r.status} reservation, "
                    f"expected {expected}"
                )
        if payment.cancelled_amount != sum(x.amount for x in refunds if x.status == "DONE"):
            problems.append(f"payment {payment.id} cancelled_amount disagrees with its refunds")

    assert not problems, "inconsistent state:\n  " + "\n  ".join(problems)
    return snap


def status_counts(snap: Snapshot) -> Counter[str]:
    return Counter(r.status for r in snap.reservations)

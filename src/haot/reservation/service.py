"""Reservation use cases: quote, booking, reads, cancellation.

A booking holds every night, reserves the coupon, holds points and creates the payment, through
the other contexts' clients. Where those contexts keep their tables in the reservation's database
(the all-in-one deployment), every step joins one transaction with the reservation row itself: all
or nothing, and nothing to compensate (ADR 0013). Elsewhere the same steps run as a saga, each in
its own transaction: the reservation is recorded first (PENDING, with an expiry), and any failure
marks it FAILED with a ``reservation_failed`` event, from which every context undoes its own step;
a crash mid-saga leaves a PENDING reservation that the expiry job gives up the same way. Either way
a booking ends fully confirmed or fully compensated, never in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, cast

import structlog
from prometheus_client import Counter

from haot.lodging.client import LodgingClient, StayQuote, check_stay
from haot.platform.auth import Principal
from haot.platform.clock import seoul_today, utcnow
from haot.platform.errors import (
    Conflict,
    HaotError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
)
from haot.platform.ids import new_id
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams
from haot.reservation import events
from haot.reservation.domain import (
    RefundTier,
    ReservationStatus,
    can_move,
    payable,
    refund_amount,
    refund_percent,
)
from haot.reservation.guests import names_of
from haot.reservation.models import Reservation
from haot.reservation.ports import CouponPort, InsufficientPoints, PaymentPort, PointPort
from haot.reservation.repository import ReservationRepository, keyed_reservation
from haot.reservation.schemas import (
    CancellationTerms,
    HostReservationRead,
    NightPrice,
    QuoteRead,
    ReservationCreated,
    ReservationRead,
    StayRequest,
)

log = structlog.get_logger(__name__)

RESERVATIONS = Counter("haot_reservations_total", "Reservation transitions", ["status"])
BOOKING_SAGAS = Counter(
    "haot_booking_sagas_total",
    "Booking sagas (ADR 0005; not bookings made in one transaction) by outcome: completed,"
    " refused (a step said no: sold out, coupon or points gone) or failed (a step's context"
    " unavailable or in error, or an unexpected error)",
    ["outcome"],
)
for _outcome in ("completed", "refused", "failed"):  # exported at 0: a first failure shows
    BOOKING_SAGAS.labels(_outcome)


class ReservationNotFound(NotFound):
    code = "reservation_not_found"
    title = "Reservation not found"


class InvalidTransition(Conflict):
    code = "invalid_state"
    title = "The reservation is not in a state that allows this"


class TooManyPending(Conflict):
    code = "too_many_pending"
    title = "Too many unpaid reservations; pay or cancel one first"


class BookingFailed(Conflict):
    code = "booking_failed"
    title = "The booking made with this Idempotency-Key failed; try again with a new key"


class CancellationClosed(Conflict):
    code = "cancellation_closed"
    title = "The stay has started; it can no longer be cancelled"


def reservation_read(r: Reservation) -> ReservationRead:
    return ReservationRead(
        id=r.id,
        user_id=r.user_id,
        lodging_id=r.lodging_id,
        room_type_id=r.room_type_id,
        lodging_name=r.lodging_name,
        room_type_name=r.room_type_name,
        check_in=r.check_in,
        check_out=r.check_out,
        guests=r.guests,
        nights=[NightPrice(date=date.fromisoformat(n["date"]), price=n["price"]) for n in r.nights],
        subtotal=r.subtotal,
        coupon_discount=r.coupon_discount,
        points_used=r.points_used,
        amount=r.amount,
        user_coupon_id=r.user_coupon_id,
        status=ReservationStatus(r.status),
        payment_id=r.payment_id,
        checkout_url=r.checkout_url if r.status == ReservationStatus.PENDING.value else None,
        expires_at=r.expires_at,
        refund_amount=r.refund_amount,
        failure_reason=r.failure_reason,
        cancelled_by=r.cancelled_by,
        created_at=r.created_at,
        confirmed_at=r.confirmed_at,
        cancelled_at=r.cancelled_at,
        completed_at=r.completed_at,
    )


def cancellation_terms(row: Reservation, *, full_refund: bool, today: date) -> CancellationTerms:
    """What cancelling ``row`` today refunds: nothing paid back for an unpaid reservation (its
    held points all return); for a confirmed one the lodging's policy, or everything when the
    host or an admin cancels. Raises when it can no longer be cancelled."""
    status = ReservationStatus(row.status)
    if status is ReservationStatus.PENDING:
        return CancellationTerms(refund_percent=0, refund_amount=0, points_refund=row.points_used)
    if status is not ReservationStatus.CONFIRMED:
        raise InvalidTransition(f"a {status.value} reservation cannot be cancelled")
    if row.check_out <= today or (not full_refund and row.check_in <= today):
        raise CancellationClosed()
    percent = (
        100
        if full_refund
        else refund_percent(
            [RefundTier(**t) for t in row.cancellation_policy], today=today, check_in=row.check_in
        )
    )
    return CancellationTerms(
        refund_percent=percent,
        refund_amount=refund_amount(row.amount, percent),
        points_refund=row.points_used * percent // 100,
    )


def reservation_facts(reservation: Reservation) -> dict[str, Any]:
    """The fields every reservation event carries."""
    return {
        "reservation_id": reservation.id,
        "user_id": reservation.user_id,
        "host_id": reservation.host_id,
        "lodging_id": reservation.lodging_id,
        "room_type_id": reservation.room_type_id,
        "check_in": reservation.check_in,
        "check_out": reservation.check_out,
        "amount": reservation.amount,
        "subtotal": reservation.subtotal,
        "points_used": reservation.points_used,
        "user_coupon_id": reservation.user_coupon_id,
        "payment_id": reservation.payment_id,
        "status": reservation.status,
    }


_EVENT_OF: dict[ReservationStatus, type[events.ReservationFacts]] = {
    ReservationStatus.CONFIRMED: events.ReservationConfirmed,
    ReservationStatus.EXPIRED: events.ReservationExpired,
    ReservationStatus.FAILED: events.ReservationFailed,
    ReservationStatus.CANCELLED: events.ReservationCancelled,
    ReservationStatus.COMPLETED: events.ReservationCompleted,
}


def move(
    uow: UnitOfWork, reservation: Reservation, target: ReservationStatus, **extra: Any
) -> None:
    """Apply one state transition with its event, in the caller's unit of work."""
    current = ReservationStatus(reservation.status)
    if not can_move(current, target):
        raise InvalidTransition(f"{current.value} → {target.value} is not allowed")
    now = utcnow()
    reservation.status = target.value
    reservation.version += 1
    reservation.updated_at = now
    if target is ReservationStatus.CONFIRMED:
        reservation.confirmed_at = now
    elif target is ReservationStatus.CANCELLED:
        reservation.cancelled_at = now
    elif target is ReservationStatus.COMPLETED:
        reservation.completed_at = now
    RESERVATIONS.labels(target.value).inc()
    uow.emit(_EVENT_OF[target](**reservation_facts(reservation), **extra))


@dataclass(frozen=True, slots=True)
class Booked:
    created: ReservationCreated
    replayed: bool  # the answer to an earlier request with the same Idempotency-Key


class BookingFacts(Protocol):
    """What a replayed answer is made of: a ``Reservation``, or a plain row of its table."""

    id: uuid.UUID
    room_type_id: uuid.UUID
    check_in: date
    check_out: date
    guests: int
    user_coupon_id: uuid.UUID | None
    points_used: int
    amount: int
    status: str
    payment_id: str | None
    checkout_url: str | None
    expires_at: datetime
    failure_reason: str | None


def _created(r: BookingFacts, status: ReservationStatus) -> ReservationCreated:
    return ReservationCreated(
        id=r.id,
        status=status,
        expires_at=r.expires_at,
        amount=r.amount,
        payment_id=r.payment_id,
        checkout_url=r.checkout_url,
    )


def replayed_answer(existing: BookingFacts, request: StayRequest) -> Booked:
    """The answer the request that made ``existing`` got, for a retry with its Idempotency-Key:
    the same stay, or ``idempotency_key_reused``. The reservation may have moved on since (paid,
    cancelled); its current state is one GET away, as with any replayed answer."""
    same = (
        existing.room_type_id == request.room_type_id
        and existing.check_in == request.check_in
        and existing.check_out == request.check_out
        and existing.guests == request.guests
        and existing.user_coupon_id == request.user_coupon_id
    )
    if not same:
        raise IdempotencyKeyReused()
    if existing.payment_id is None and existing.amount > 0:  # no 201 has gone out for it yet
        if existing.status == ReservationStatus.PENDING.value:  # a saga still at work on it
            raise IdempotencyKeyInFlight(headers={"Retry-After": "1"})
        # Given up while it was being made (failed, expired or cancelled mid-saga).
        raise BookingFailed(existing.failure_reason or "the booking did not complete")
    if existing.points_used != request.points:  # recorded once the saga has held them
        raise IdempotencyKeyReused()
    first = ReservationStatus.CONFIRMED if existing.amount == 0 else ReservationStatus.PENDING
    return Booked(_created(existing, first), replayed=True)


async def _search(
    uow: UnitOfWork,
    paging: PageParams,
    user_id: uuid.UUID | None,
    host_id: uuid.UUID | None,
    lodging_id: uuid.UUID | None,
    status: ReservationStatus | None,
) -> tuple[Sequence[Reservation], int]:
    """One page of the reservations matching the filters, and how many match in all."""
    return await ReservationRepository(uow.session).search(
        user_id=user_id,
        host_id=host_id,
        lodging_id=lodging_id,
        status=status.value if status else None,
        offset=paging.offset,
        limit=paging.size,
    )


class ReservationService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        lodging: LodgingClient,
        coupons: CouponPort,
        points: PointPort,
        payments: PaymentPort,
        hold_ttl: timedelta,
        max_pending_per_user: int,
        one_transaction: bool = False,
    ) -> None:
        """``one_transaction``: the other contexts' clients run in-process on this context's
        database, so their steps can join the booking's transaction (ADR 0013)."""
        self._uow = uow
        self._lodging = lodging
        self._coupons = coupons
        self._points = points
        self._payments = payments
        self._hold_ttl = hold_ttl
        self._max_pending = max_pending_per_user
        self._one_transaction = one_transaction

    @staticmethod
    def _check_dates(request: StayRequest) -> None:
        check_stay(request.check_in, request.check_out, today=seoul_today())

    async def _discounts(
        self, user_id: uuid.UUID, request: StayRequest, stay: StayQuote
    ) -> tuple[int, int]:
        discount = 0
        if request.user_coupon_id is not None:
            discount = await self._coupons.discount_for(
                user_id=user_id,
                user_coupon_id=request.user_coupon_id,
                lodging_id=stay.lodging_id,
                order_amount=stay.subtotal,
            )
        if request.points:
            if request.points > stay.subtotal - discount:
                raise InvalidInput("points cannot exceed the amount left after the coupon")
            if request.points > await self._points.spendable(user_id=user_id):
                raise InsufficientPoints()
        return discount, request.points

    async def quote(self, principal: Principal, request: StayRequest) -> QuoteRead:
        self._check_dates(request)
        stay = await self._lodging.quote(
            request.room_type_id, request.check_in, request.check_out, request.guests
        )
        discount, points = await self._discounts(principal.user_id, request, stay)
        return QuoteRead(
            room_type_id=stay.room_type_id,
            lodging_id=stay.lodging_id,
            check_in=stay.check_in,
            check_out=stay.check_out,
            nights=[NightPrice(date=d, price=p) for d, p in stay.nights],
            subtotal=stay.subtotal,
            coupon_discount=discount,
            points_used=points,
            amount=payable(stay.subtotal, discount, points),
        )

    async def create(
        self, principal: Principal, request: StayRequest, *, idempotency_key: str | None
    ) -> ReservationCreated:
        return (await self.book(principal, request, idempotency_key=idempotency_key)).created

    async def book(
        self, principal: Principal, request: StayRequest, *, idempotency_key: str | None
    ) -> Booked:
        """Book a stay. The Idempotency-Key is kept with the reservation itself (ADR 0016): the
        same key with the same stay answers the original answer again (``replayed``), with
        another stay it is refused; a refusal is not remembered, so a retry runs again (a refused
        booking changed nothing)."""
        self._check_dates(request)
        if replay := await self._refuse_early(principal, request, idempotency_key):
            return replay
        if self._one_transaction:
            return await self._book_in_one_transaction(principal, request, idempotency_key)
        user_id = principal.user_id
        if idempotency_key:
            async with self._uow() as uow:
                existing = await ReservationRepository(uow.session).get_by_idempotency_key(
                    user_id, idempotency_key
                )
            if existing is not None:
                return replayed_answer(existing, request)
        stay = await self._lodging.quote(
            request.room_type_id, request.check_in, request.check_out, request.guests
        )
        await self._discounts(user_id, request, stay)
        reservation = await self._record(principal, request, stay, idempotency_key)
        if isinstance(reservation, Booked):
            return reservation
        try:
            created = await self._run_saga(reservation, request)
        except HaotError as exc:
            BOOKING_SAGAS.labels("refused" if exc.status < 500 else "failed").inc()
            await self._fail(reservation.id, exc.detail)
            raise
        except Exception:
            BOOKING_SAGAS.labels("failed").inc()
            await self._fail(reservation.id, "internal error while booking")
            raise
        BOOKING_SAGAS.labels("completed").inc()
        return Booked(created, replayed=False)

    async def _refuse_early(
        self, principal: Principal, request: StayRequest, idempotency_key: str | None
    ) -> Booked | None:
        """Refuse a stay whose nights cannot be had right now before taking the guest's lock or
        opening the booking's transaction: in a rush for the last rooms most answers are this
        one. A retry of a booking that took those very rooms still gets its reservation."""
        try:
            await self._lodging.check_available(
                request.room_type_id, request.check_in, request.check_out, request.guests
            )
        except HaotError:
            if idempotency_key:
                async with self._uow.read() as connection:
                    existing = await keyed_reservation(
                        connection, principal.user_id, idempotency_key
                    )
                if existing is not None:
                    return replayed_answer(cast(BookingFacts, existing), request)
            raise
        return None

    async def _book_in_one_transaction(
        self, principal: Principal, request: StayRequest, idempotency_key: str | None
    ) -> Booked:
        """Every step of the booking in one transaction: the other contexts' units of work join
        this one, so a failure anywhere rolls back everything and leaves nothing behind."""
        user_id = principal.user_id
        async with self._uow(shared=True) as uow:
            repo = ReservationRepository(uow.session)
            await repo.lock_guest(user_id)
            pending, keyed = await repo.pending_and_keyed(user_id, idempotency_key)
            if keyed is not None and (existing := await repo.get(keyed)) is not None:
                return replayed_answer(existing, request)
            if pending >= self._max_pending:
                raise TooManyPending()
            reservation_id = new_id()
            held = await self._lodging.hold(
                reservation_id,
                request.room_type_id,
                request.check_in,
                request.check_out,
                request.guests,
            )
            discount, points, amount, payment_id, checkout_url = await self._charge(
                reservation_id, user_id, request, held
            )
            reservation = self._new_reservation(
                reservation_id, principal, request, held, idempotency_key
            )
            reservation.coupon_discount = discount
            reservation.points_used = points
            reservation.amount = amount
            reservation.payment_id = payment_id
            reservation.checkout_url = checkout_url
            repo.add(reservation)
            if amount == 0:
                move(uow, reservation, ReservationStatus.CONFIRMED)  # nothing to pay
            await uow.commit()
        return Booked(self._created(reservation), replayed=False)

    async def _charge(
        self, reservation_id: uuid.UUID, user_id: uuid.UUID, request: StayRequest, held: StayQuote
    ) -> tuple[int, int, int, str | None, str | None]:
        """Reserve the coupon, hold the points and create the payment for a held stay:
        (discount, points, amount, payment id, checkout url)."""
        discount = 0
        if request.user_coupon_id is not None:
            discount = await self._coupons.reserve(
                user_id=user_id,
                user_coupon_id=request.user_coupon_id,
                reservation_id=reservation_id,
                lodging_id=held.lodging_id,
                order_amount=held.subtotal,
            )
        if request.points > held.subtotal - discount:
            raise InvalidInput("points cannot exceed the amount left after the coupon")
        points = request.points
        if points:
            await self._points.hold(user_id=user_id, reservation_id=reservation_id, amount=points)
        amount = payable(held.subtotal, discount, points)
        payment_id = checkout_url = None
        if amount > 0:
            payment_id, checkout_url = await self._payments.create_payment(
                reservation_id=reservation_id,
                user_id=user_id,
                amount=amount,
                order_name=f"{held.lodging_name} · {held.room_type_name}",
            )
        return discount, points, amount, payment_id, checkout_url

    async def _record(
        self,
        principal: Principal,
        request: StayRequest,
        stay: StayQuote,
        idempotency_key: str | None,
    ) -> Reservation | Booked:
        """The PENDING reservation, recorded; or the replay of the one a concurrent request
        with the same Idempotency-Key recorded first."""
        async with self._uow() as uow:
            repo = ReservationRepository(uow.session)
            await repo.lock_guest(principal.user_id)
            pending, keyed = await repo.pending_and_keyed(principal.user_id, idempotency_key)
            if keyed is not None and (existing := await repo.get(keyed)) is not None:
                return replayed_answer(existing, request)
            if pending >= self._max_pending:
                raise TooManyPending()
            reservation = self._new_reservation(new_id(), principal, request, stay, idempotency_key)
            repo.add(reservation)
            await uow.commit()
        return reservation

    def _new_reservation(
        self,
        reservation_id: uuid.UUID,
        principal: Principal,
        request: StayRequest,
        stay: StayQuote,
        idempotency_key: str | None,
    ) -> Reservation:
        """A PENDING reservation for the quoted stay, nothing discounted yet."""
        now = utcnow()
        return Reservation(
            id=reservation_id,
            user_id=principal.user_id,
            host_id=stay.host_id,
            lodging_id=stay.lodging_id,
            room_type_id=stay.room_type_id,
            lodging_name=stay.lodging_name,
            room_type_name=stay.room_type_name,
            check_in=request.check_in,
            check_out=request.check_out,
            guests=request.guests,
            nights=[{"date": d.isoformat(), "price": p} for d, p in stay.nights],
            subtotal=stay.subtotal,
            coupon_discount=0,
            points_used=0,
            amount=stay.subtotal,
            user_coupon_id=request.user_coupon_id,
            cancellation_policy=[
                {"days_before": t.days_before, "refund_percent": t.refund_percent}
                for t in stay.cancellation_policy
            ],
            status=ReservationStatus.PENDING.value,
            version=1,
            expires_at=now + self._hold_ttl,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )

    async def _run_saga(self, reservation: Reservation, request: StayRequest) -> ReservationCreated:
        held = await self._lodging.hold(
            reservation.id,
            request.room_type_id,
            request.check_in,
            request.check_out,
            request.guests,
        )
        discount, points, amount, payment_id, checkout_url = await self._charge(
            reservation.id, reservation.user_id, request, held
        )
        async with self._uow() as uow:
            row = await ReservationRepository(uow.session).get(reservation.id, for_update=True)
            if row is None or row.status != ReservationStatus.PENDING.value:
                raise InvalidTransition("The reservation expired while it was being booked")
            row.nights = [{"date": d.isoformat(), "price": p} for d, p in held.nights]
            row.subtotal = held.subtotal
            row.coupon_discount = discount
            row.points_used = points
            row.amount = amount
            row.payment_id = payment_id
            row.checkout_url = checkout_url
            row.updated_at = utcnow()
            if amount == 0:
                move(uow, row, ReservationStatus.CONFIRMED)  # nothing to pay
            await uow.commit()
        return self._created(row)

    @staticmethod
    def _created(r: Reservation) -> ReservationCreated:
        return _created(r, ReservationStatus(r.status))

    async def _fail(self, reservation_id: uuid.UUID, reason: str) -> None:
        async with self._uow() as uow:
            row = await ReservationRepository(uow.session).get(reservation_id, for_update=True)
            if row is None or row.status != ReservationStatus.PENDING.value:
                return
            row.failure_reason = reason[:300]
            move(uow, row, ReservationStatus.FAILED)
            await uow.commit()

    async def get_for(self, principal: Principal, reservation_id: uuid.UUID) -> ReservationRead:
        async with self._uow() as uow:
            row = await ReservationRepository(uow.session).get(reservation_id)
        if row is None or not (
            principal.is_admin
            or row.user_id == principal.user_id
            or row.host_id == principal.user_id
        ):
            raise ReservationNotFound()
        return reservation_read(row)

    async def list(
        self,
        *,
        paging: PageParams,
        user_id: uuid.UUID | None = None,
        host_id: uuid.UUID | None = None,
        lodging_id: uuid.UUID | None = None,
        status: ReservationStatus | None = None,
    ) -> Page[ReservationRead]:
        async with self._uow() as uow:
            rows, total = await _search(uow, paging, user_id, host_id, lodging_id, status)
        return Page[ReservationRead].of(rows, total, paging, reservation_read)

    async def list_with_guests(
        self,
        *,
        paging: PageParams,
        user_id: uuid.UUID | None = None,
        host_id: uuid.UUID | None = None,
        lodging_id: uuid.UUID | None = None,
        status: ReservationStatus | None = None,
    ) -> Page[HostReservationRead]:
        """``list`` as hosts and admins see it: each reservation with its guest's name."""
        async with self._uow() as uow:
            rows, total = await _search(uow, paging, user_id, host_id, lodging_id, status)
            names = await names_of(uow.session, (row.user_id for row in rows))

        def read(row: Reservation) -> HostReservationRead:
            return HostReservationRead(
                **reservation_read(row).model_dump(), guest_name=names.get(row.user_id)
            )

        return Page[HostReservationRead].of(rows, total, paging, read)

    async def _cancellable(
        self, uow: UnitOfWork, principal: Principal, reservation_id: uuid.UUID, *, by_host: bool
    ) -> Reservation:
        row = await ReservationRepository(uow.session).get(reservation_id, for_update=True)
        allowed = row is not None and (
            principal.is_admin
            or (by_host and row.host_id == principal.user_id)
            or (not by_host and row.user_id == principal.user_id)
        )
        if row is None or not allowed:
            raise ReservationNotFound()
        return row

    async def cancellation_terms(
        self, principal: Principal, reservation_id: uuid.UUID, *, by_host: bool
    ) -> CancellationTerms:
        """What cancelling now would refund, without cancelling (the guest sees it first). The
        same rule as ``cancel``; raises what ``cancel`` would raise."""
        async with self._uow() as uow:
            row = await self._cancellable(uow, principal, reservation_id, by_host=by_host)
            return cancellation_terms(
                row, full_refund=by_host or principal.is_admin, today=seoul_today()
            )

    async def cancel(
        self, principal: Principal, reservation_id: uuid.UUID, *, by_host: bool, reason: str
    ) -> ReservationRead:
        """Guests get the lodging's policy refund; a host or admin cancellation refunds in full."""
        async with self._uow() as uow:
            row = await self._cancellable(uow, principal, reservation_id, by_host=by_host)
            was_confirmed = row.status == ReservationStatus.CONFIRMED.value
            terms = cancellation_terms(
                row, full_refund=by_host or principal.is_admin, today=seoul_today()
            )
            row.refund_amount = terms.refund_amount
            row.cancelled_by = "ADMIN" if principal.is_admin else "HOST" if by_host else "GUEST"
            row.failure_reason = reason or None
            move(
                uow,
                row,
                ReservationStatus.CANCELLED,
                refund_amount=terms.refund_amount,
                refund_percent=terms.refund_percent,
                was_confirmed=was_confirmed,
                points_refund=terms.points_refund,
            )
            await uow.commit()
        return reservation_read(row)

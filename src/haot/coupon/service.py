"""Coupon use cases: templates, direct issue, events (admin), my coupons, and coupons in the
reservation saga (reserve on a pending reservation, use on confirmation, restore otherwise)."""

from __future__ import annotations

import uuid
from datetime import datetime

from haot.coupon.domain import (
    DiscountType,
    EventStatus,
    Terms,
    UserCouponStatus,
    discount,
    event_status,
    inapplicable_because,
)
from haot.coupon.drops import Drops, EventState
from haot.coupon.models import Coupon, CouponEvent, ReservationFence, UserCoupon
from haot.coupon.repository import CouponRepository
from haot.coupon.schemas import (
    CouponCreate,
    CouponRead,
    CouponUpdate,
    EventCreate,
    EventRead,
    EventUpdate,
    IssueResult,
    UserCouponRead,
)
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, InvalidInput, NotFound
from haot.platform.ids import new_id
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    title = "Coupon not found"


class EventNotFound(NotFound):
    code = "event_not_found"
    title = "Coupon event not found"


class CouponNotUsable(InvalidInput):
    code = "coupon_not_usable"
    title = "The coupon cannot be used for this reservation"


class EventLocked(Conflict):
    code = "event_started"
    title = "An event that has started can only be closed or extended"


def terms_of(coupon: Coupon) -> Terms:
    return Terms(
        discount_type=DiscountType(coupon.discount_type),
        discount_value=coupon.discount_value,
        max_discount=coupon.max_discount,
        min_order_amount=coupon.min_order_amount,
        valid_from=coupon.valid_from,
        valid_to=coupon.valid_to,
        lodging_id=coupon.lodging_id,
    )


def event_read(
    event: CouponEvent, now: datetime, *, coupon: Coupon | None = None, remaining: int | None = None
) -> EventRead:
    status = event_status(
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        closed_reason=event.closed_reason,
        now=now,
    )
    if remaining is None and event.quantity is not None:
        remaining = max(0, event.quantity - event.issued)
    return EventRead(
        id=event.id,
        coupon_id=event.coupon_id,
        name=event.name,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        quantity=event.quantity,
        issued=event.issued,
        remaining=None if event.quantity is None else remaining,
        status=status,
        closed_reason=event.closed_reason or ("TIME" if status is EventStatus.CLOSED else None),
        coupon=CouponRead.model_validate(coupon) if coupon else None,
    )


def redis_state(event: CouponEvent, users: list[str]) -> EventState:
    if event.closed_reason == "EXHAUSTED":
        state = "exhausted"
    elif event.closed_reason is not None:
        state = "closed"
    else:
        state = "open"
    remaining = -1 if event.quantity is None else max(0, event.quantity - event.issued)
    if remaining == 0 and state == "open":
        state = "exhausted"
    return EventState(
        event_id=event.id,
        state=state,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        remaining=remaining,
        users=users,
    )


class CouponService:
    def __init__(self, *, uow: UnitOfWorkFactory, drops: Drops) -> None:
        self._uow = uow
        self._drops = drops

    # Templates ---------------------------------------------------------------------------------

    async def create_coupon(self, data: CouponCreate) -> CouponRead:
        now = utcnow()
        coupon = Coupon(
            id=new_id(), active=True, created_at=now, updated_at=now, **data.model_dump()
        )
        async with self._uow() as uow:
            CouponRepository(uow.session).add(coupon)
            await uow.commit()
        return CouponRead.model_validate(coupon)

    async def list_coupons(
        self, *, q: str | None, active: bool | None, paging: PageParams
    ) -> Page[CouponRead]:
        async with self._uow() as uow:
            rows, total = await CouponRepository(uow.session).list_coupons(
                q=q, active=active, offset=paging.offset, limit=paging.size
            )
        return Page[CouponRead].of(rows, total, paging, CouponRead.model_validate)

    async def coupon(self, coupon_id: uuid.UUID) -> CouponRead:
        async with self._uow() as uow:
            coupon = await CouponRepository(uow.session).get_coupon(coupon_id)
        if coupon is None:
            raise CouponNotFound()
        return CouponRead.model_validate(coupon)

    async def update_coupon(self, coupon_id: uuid.UUID, data: CouponUpdate) -> CouponRead:
        async with self._uow() as uow:
            coupon = await CouponRepository(uow.session).get_coupon(coupon_id)
            if coupon is None:
                raise CouponNotFound()
            for field, value in data.model_dump(exclude_unset=True).items():
                if value is not None:
                    setattr(coupon, field, value)
            if coupon.valid_to <= coupon.valid_from:
                raise InvalidInput("valid_to must be after valid_from")
            coupon.updated_at = utcnow()
            await uow.commit()
        return CouponRead.model_validate(coupon)

    async def issue(self, coupon_id: uuid.UUID, user_ids: list[uuid.UUID]) -> IssueResult:
        """Hand a coupon to users directly (customer service, compensation)."""
        now = utcnow()
        issued: list[uuid.UUID] = []
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            coupon = await repo.get_coupon(coupon_id)
            if coupon is None:
                raise CouponNotFound()
            if not coupon.active or coupon.valid_to <= now:
                raise Conflict("the coupon is inactive or expired")
            for user_id in dict.fromkeys(user_ids):
                user_coupon = UserCoupon(
                    id=new_id(),
                    user_id=user_id,
                    coupon_id=coupon.id,
                    event_id=None,
                    status=UserCouponStatus.ISSUED.value,
                    expires_at=coupon.valid_to,
                    issued_at=now,
                    updated_at=now,
                )
                repo.add(user_coupon)
                issued.append(user_coupon.id)
            await uow.commit()
        return IssueResult(issued=issued)

    # Events ------------------------------------------------------------------------------------

    async def create_event(self, data: EventCreate) -> EventRead:
        now = utcnow()
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            coupon = await repo.get_coupon(data.coupon_id)
            if coupon is None:
                raise CouponNotFound()
            if data.ends_at <= now:
                raise InvalidInput("ends_at must be in the future")
            event = CouponEvent(
                id=new_id(),
                coupon_id=coupon.id,
                name=data.name or coupon.name,
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                quantity=data.quantity,
                issued=0,
                closed_reason=None,
                created_at=now,
                updated_at=now,
            )
            repo.add(event)
            await uow.commit()
        await self._drops.load(redis_state(event, []))
        return event_read(event, now, coupon=coupon)

    async def update_event(self, event_id: uuid.UUID, data: EventUpdate) -> EventRead:
        now = utcnow()
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            event = await repo.get_event(event_id, for_update=True)
            if event is None:
                raise EventNotFound()
            started = event.starts_at <= now
            if data.status is EventStatus.CLOSED:
                event.closed_reason = event.closed_reason or "MANUAL"
            elif data.status is not None:
                raise InvalidInput("status can only be set to CLOSED")
            if started and (data.starts_at is not None or data.quantity is not None):
                raise EventLocked()
            if data.name is not None:
                event.name = data.name
            if data.starts_at is not None:
                event.starts_at = data.starts_at
            if data.ends_at is not None:
                event.ends_at = data.ends_at
            if data.quantity is not None:
                event.quantity = data.quantity
            if event.ends_at <= event.starts_at:
                raise InvalidInput("ends_at must be after starts_at")
            event.updated_at = now
            users = await repo.event_user_ids(event.id)
            await uow.commit()
        if data.quantity is not None:  # only before the start: nothing admitted yet
            await self._drops.load(redis_state(event, users))
        else:  # Redis may hold admitted claims the database has not seen yet: keep them
            await self._drops.configure(redis_state(event, users))
        return event_read(event, now)

    async def list_events(self, *, live_only: bool, paging: PageParams) -> Page[EventRead]:
        now = utcnow()
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            rows, total = await repo.list_events(
                live_at=now if live_only else None, offset=paging.offset, limit=paging.size
            )
            coupons = await repo.coupons_by_id([r.coupon_id for r in rows])
        stock = await self._drops.remaining([r.id for r in rows]) if live_only else {}
        items = []
        for row in rows:
            redis_left = stock.get(row.id)
            items.append(
                event_read(
                    row,
                    now,
                    coupon=coupons.get(row.coupon_id),
                    remaining=redis_left if redis_left is not None and redis_left >= 0 else None,
                )
            )
        return Page[EventRead](items=items, page=paging.page, size=paging.size, total=total)

    async def get_event(self, event_id: uuid.UUID) -> EventRead:
        now = utcnow()
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            event = await repo.get_event(event_id)
            if event is None:
                raise EventNotFound()
            coupon = await repo.get_coupon(event.coupon_id)
        return event_read(event, now, coupon=coupon)

    # My coupons --------------------------------------------------------------------------------

    async def my_coupons(
        self, user_id: uuid.UUID, *, status: UserCouponStatus | None, paging: PageParams
    ) -> Page[UserCouponRead]:
        async with self._uow() as uow:
            repo = CouponRepository(uow.session)
            rows, total = await repo.user_coupons(
                user_id,
                status=status.value if status else None,
                offset=paging.offset,
                limit=paging.size,
            )
            coupons = await repo.coupons_by_id([r.coupon_id for r in rows])
        return Page[UserCouponRead](
            items=[
                UserCouponRead(
                    id=r.id,
                    coupon_id=r.coupon_id,
                    event_id=r.event_id,
                    status=UserCouponStatus(r.status),
                    reservation_id=r.reservation_id,
                    expires_at=r.expires_at,
                    issued_at=r.issued_at,
                    used_at=r.used_at,
                    coupon=CouponRead.model_validate(coupons[r.coupon_id]),
                )
                for r in rows
            ],
            page=paging.page,
            size=paging.size,
            total=total,
        )

    # Reservation saga --------------------------------------------------------------------------

    async def _usable(
        self,
        uow: UnitOfWork,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
        *,
        for_update: bool,
    ) -> tuple[UserCoupon, int]:
        repo = CouponRepository(uow.session)
        user_coupon = await repo.get_user_coupon(user_coupon_id, for_update=for_update)
        if user_coupon is None or user_coupon.user_id != user_id:
            raise CouponNotUsable("no such coupon")
        coupon = await repo.get_coupon(user_coupon.coupon_id)
        if coupon is None or not coupon.active:
            raise CouponNotUsable("the coupon is no longer active")
        terms = terms_of(coupon)
        if reason := inapplicable_because(
            terms, order_amount=order_amount, lodging_id=lodging_id, now=utcnow()
        ):
            raise CouponNotUsable(reason)
        return user_coupon, discount(terms, order_amount)

    async def discount_for(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        async with self._uow() as uow:
            user_coupon, off = await self._usable(
                uow, user_id, user_coupon_id, lodging_id, order_amount, for_update=False
            )
        if user_coupon.status != UserCouponStatus.ISSUED.value:
            raise CouponNotUsable(f"the coupon is {user_coupon.status}")
        return off

    async def reserve(
        self,
        *,
        user_id: uuid.UUID,
        user_coupon_id: uuid.UUID,
        reservation_id: uuid.UUID,
        lodging_id: uuid.UUID,
        order_amount: int,
    ) -> int:
        """ISSUED → RESERVED for this reservation, under a row lock: of two reservations racing
        for one coupon, one gets it. Idempotent for the same reservation."""
        async with self._uow() as uow:
            user_coupon, off = await self._usable(
                uow, user_id, user_coupon_id, lodging_id, order_amount, for_update=True
            )
            if user_coupon.status == UserCouponStatus.RESERVED.value and (
                user_coupon.reservation_id == reservation_id
            ):
                return off
            if user_coupon.status != UserCouponStatus.ISSUED.value:
                raise CouponNotUsable(f"the coupon is {user_coupon.status}")
            if await uow.session.get(ReservationFence, reservation_id) is not None:
                raise CouponNotUsable("the reservation was already given up")
            user_coupon.status = UserCouponStatus.RESERVED.value
            user_coupon.reservation_id = reservation_id
            user_coupon.updated_at = utcnow()
            await uow.commit()
        return off

    async def mark_used(self, uow: UnitOfWork, reservation_id: uuid.UUID) -> bool:
        user_coupon = await CouponRepository(uow.session).user_coupon_by_reservation(reservation_id)
        if user_coupon is None or user_coupon.status != UserCouponStatus.RESERVED.value:
            return False
        now = utcnow()
        user_coupon.status = UserCouponStatus.USED.value
        user_coupon.used_at = now
        user_coupon.updated_at = now
        return True

    async def restore(
        self, uow: UnitOfWork, reservation_id: uuid.UUID, user_coupon_id: uuid.UUID
    ) -> bool:
        """The reservation will not happen: its coupon is the user's again (or expired, if its
        validity has passed meanwhile). Locks the coupon row that ``reserve`` locks, so if the
        saga has not reserved it yet, the fence written here is seen by that late ``reserve``."""
        repo = CouponRepository(uow.session)
        user_coupon = await repo.get_user_coupon(user_coupon_id, for_update=True)
        now = utcnow()
        if user_coupon is None or user_coupon.reservation_id != reservation_id:
            if await uow.session.get(ReservationFence, reservation_id) is None:
                repo.add(ReservationFence(reservation_id=reservation_id, created_at=now))
            return False
        if user_coupon.status not in (
            UserCouponStatus.RESERVED.value,
            UserCouponStatus.USED.value,
        ):
            return False
        user_coupon.status = (
            UserCouponStatus.ISSUED.value
            if user_coupon.expires_at > now
            else UserCouponStatus.EXPIRED.value
        )
        user_coupon.reservation_id = None
        user_coupon.used_at = None
        user_coupon.updated_at = now
        return True

    async def expire_coupons(self, now: datetime) -> int:
        async with self._uow() as uow:
            count = await CouponRepository(uow.session).expire_issued(now)
            await uow.commit()
        return count

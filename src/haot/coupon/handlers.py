"""How the coupon context reacts to reservation events."""

from __future__ import annotations

import uuid

from haot.coupon.service import CouponService
from haot.platform.events import Event
from haot.platform.inbox import Consumer, EventHandler
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation import events as reservation_events


def coupon_consumer(uow: UnitOfWorkFactory, coupons: CouponService) -> Consumer:
    async def use(unit: UnitOfWork, event: Event) -> None:
        if event.payload.get("user_coupon_id"):
            await coupons.mark_used(unit, uuid.UUID(event.payload["reservation_id"]))

    async def restore(unit: UnitOfWork, event: Event) -> None:
        if event.payload.get("user_coupon_id"):
            await coupons.restore(
                unit,
                uuid.UUID(event.payload["reservation_id"]),
                uuid.UUID(event.payload["user_coupon_id"]),
            )

    handlers: dict[str, EventHandler] = {reservation_events.RESERVATION_CONFIRMED: use}
    for kind in reservation_events.GIVEN_UP:
        handlers[kind] = restore
    return Consumer("coupon.reservations", uow, handlers)

"""How the coupon context reacts to reservation events."""

from __future__ import annotations

from haot.coupon.service import CouponService
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation.events import GIVEN_UP, ReservationConfirmed, ReservationFacts


def coupon_consumer(uow: UnitOfWorkFactory, coupons: CouponService) -> Consumer:
    async def use(unit: UnitOfWork, event: ReservationConfirmed) -> None:
        if event.user_coupon_id is not None:
            await coupons.mark_used(unit, event.reservation_id)

    async def restore(unit: UnitOfWork, event: ReservationFacts) -> None:
        if event.user_coupon_id is not None:
            await coupons.restore(unit, event.reservation_id, event.user_coupon_id)

    consumer = Consumer("coupon.reservations", uow).on(ReservationConfirmed, use)
    for given_up in GIVEN_UP:
        consumer.on(given_up, restore)
    return consumer

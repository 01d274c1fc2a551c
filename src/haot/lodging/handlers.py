"""How the lodging context reacts to other contexts' events: sell or give back held rooms
(reservations), keep each lodging's rating (reviews)."""

from __future__ import annotations

import structlog
from prometheus_client import Counter

from haot.lodging.inventory import RELEASED, SOLD, HoldReleased, Inventory
from haot.lodging.service import LodgingService
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation.events import GIVEN_UP, ReservationConfirmed, ReservationFacts
from haot.review.events import LodgingRatingChanged

log = structlog.get_logger(__name__)

FENCED = Counter(
    "haot_lodging_confirm_fenced_total", "Confirmations refused because the hold was released"
)


def lodging_consumer(uow: UnitOfWorkFactory, inventory: Inventory) -> Consumer:
    async def sell(unit: UnitOfWork, event: ReservationConfirmed) -> None:
        try:
            await inventory.move(unit, event.reservation_id, to=SOLD)
        except HoldReleased:
            # Cannot happen while the reservation context is the only one that decides; if it
            # does, it must be seen (alert) rather than retried forever.
            FENCED.inc()
            log.error("confirm_after_release", reservation_id=str(event.reservation_id))

    async def give_back(unit: UnitOfWork, event: ReservationFacts) -> None:
        await inventory.move(unit, event.reservation_id, to=RELEASED)

    consumer = Consumer("lodging.reservations", uow).on(ReservationConfirmed, sell)
    for given_up in GIVEN_UP:
        consumer.on(given_up, give_back)
    return consumer


def lodging_review_consumer(uow: UnitOfWorkFactory, lodgings: LodgingService) -> Consumer:
    """Each lodging's rating and review count, as the review context keeps them."""

    async def rate(unit: UnitOfWork, event: LodgingRatingChanged) -> None:
        await lodgings.apply_rating(
            unit,
            event.lodging_id,
            review_count=event.review_count,
            rating_sum=event.rating_sum,
            version=event.version,
        )

    return Consumer("lodging.reviews", uow).on(LodgingRatingChanged, rate)

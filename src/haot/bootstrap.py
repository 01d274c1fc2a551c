"""The one place where contexts are wired to the platform and to each other."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter

from haot.payment.client import InProcessPaymentClient
from haot.payment.gateway import PaymentGateway
from haot.platform.container import Platform
from haot.platform.direct import DirectRoute
from haot.platform.errors import HaotError
from haot.platform.settings import CONTEXTS, Settings


def build_platform(
    settings: Settings,
    *,
    contexts: tuple[str, ...] = CONTEXTS,
    gateway: PaymentGateway | None = None,
) -> Platform:
    """Wire the given contexts. ``gateway`` replaces the PortOne adapter (tests of the saga)."""
    platform = Platform(settings, contexts=contexts)
    if "identity" in contexts:
        _wire_identity(platform)
    if "lodging" in contexts:
        _wire_lodging(platform)
    if "point" in contexts:
        _wire_point(platform)
    if "coupon" in contexts:
        _wire_coupon(platform)
    if "payment" in contexts:
        _wire_payment(platform, gateway)
    if "reservation" in contexts:
        _wire_reservation(platform)
    if "review" in contexts:
        _wire_review(platform)
    _register_jobs(platform)
    return platform


def _wire_identity(platform: Platform) -> None:
    from haot.identity.client import InProcessIdentityClient
    from haot.identity.handlers import identity_consumer
    from haot.identity.service import IdentityService, owasp_password_hasher

    service = IdentityService(
        uow=platform.uow_factory("identity"),
        signer=platform.signer,
        revocations=platform.revocations,
        hasher=owasp_password_hasher(),
        refresh_ttl=timedelta(seconds=platform.settings.refresh_token_ttl_seconds),
    )
    platform.services["identity"] = service
    platform.services["identity.client"] = InProcessIdentityClient(service)
    platform.register_consumer(identity_consumer(platform.uow_factory("identity"), service))


def _wire_lodging(platform: Platform) -> None:
    from haot.lodging.cache import LodgingCache
    from haot.lodging.changes import ChangeFeed
    from haot.lodging.client import InProcessLodgingClient
    from haot.lodging.handlers import lodging_consumer, lodging_review_consumer
    from haot.lodging.inventory import Inventory
    from haot.lodging.offers import OfferIndex
    from haot.lodging.search import LodgingSearch
    from haot.lodging.service import LodgingService

    uow = platform.uow_factory("lodging")
    feed = ChangeFeed(platform.redis)
    cache = LodgingCache(platform.redis, feed=feed)
    service = LodgingService(uow=uow, cache=cache)
    platform.services["lodging"] = service
    offers = None
    if platform.settings.search_index:
        offers = OfferIndex(uow=uow, feed=feed, window_days=platform.settings.search_index_days)
        platform.before_serving(offers.load)
        platform.on_stop(offers.close)
    platform.services["lodging.search"] = LodgingSearch(uow=uow, cache=cache, offers=offers)
    platform.services["lodging.offers"] = offers
    inventory = Inventory(uow=uow, cache=cache)
    platform.services["lodging.client"] = InProcessLodgingClient(inventory)
    platform.register_consumer(lodging_consumer(uow, inventory))
    platform.register_consumer(lodging_review_consumer(uow, service))


def _wire_payment(platform: Platform, gateway: PaymentGateway | None) -> None:
    from haot.payment.handlers import payment_consumer
    from haot.payment.service import PaymentService

    settings = platform.settings
    if gateway is None:
        from haot.payment.portone import PortOneGateway

        gateway = PortOneGateway.from_settings(settings)
    platform.services["payment.gateway"] = gateway
    uow = platform.uow_factory("payment")
    checkout_base = (
        f"{settings.public_base_url}/fake-portone/checkout"
        if settings.fake_portone_enabled
        else f"{settings.public_base_url}/checkout"
    )
    service = PaymentService(
        uow=uow,
        gateway=gateway,
        checkout_base=checkout_base,
        return_url=f"{settings.public_base_url}/payments/{{payment_id}}/return",
        redirect_base=f"{settings.public_base_url}/payments",
    )
    platform.services["payment"] = service
    platform.services["payment.client"] = InProcessPaymentClient(service)
    platform.register_consumer(payment_consumer(uow, service))
    platform.on_stop(gateway.aclose)


def _wire_coupon(platform: Platform) -> None:
    import os
    import socket

    from haot.coupon.client import InProcessCouponClient
    from haot.coupon.drops import Drops
    from haot.coupon.handlers import coupon_consumer
    from haot.coupon.issuance import Issuance
    from haot.coupon.service import CouponService

    settings = platform.settings
    uow = platform.uow_factory("coupon")
    drops = Drops(platform.redis, claims_per_second=settings.coupon_claims_per_second)
    service = CouponService(uow=uow, drops=drops)
    issuance = Issuance(
        uow=uow,
        drops=drops,
        redis=platform.redis,
        live=platform.live,
        worker_name=f"{socket.gethostname()}-{os.getpid()}",
    )
    platform.services["coupon"] = service
    platform.services["coupon.issuance"] = issuance
    platform.services["coupon.client"] = InProcessCouponClient(service)
    platform.register_consumer(coupon_consumer(uow, service))
    platform.register_consumer(issuance.consumer())
    transport = platform.transport

    async def pump(stop: asyncio.Event) -> None:
        await issuance.pump(transport, stop)

    platform.add_background("coupon-claim-pump", pump)
    platform.on_stop(issuance.aclose)

    async def reconcile_coupons(as_of: datetime, dry_run: bool) -> dict[str, int]:
        result = await issuance.reconcile(as_of)
        result["expired_coupons"] = await service.expire_coupons(as_of)
        return result

    platform.jobs.register("reconcile-coupons", reconcile_coupons, every_seconds=30)


def _wire_review(platform: Platform) -> None:
    from haot.review.client import InProcessReviewClient
    from haot.review.handlers import review_consumer
    from haot.review.service import ReviewService

    uow = platform.uow_factory("review")
    service = ReviewService(uow=uow, window_days=platform.settings.review_window_days)
    platform.services["review"] = service
    platform.services["review.client"] = InProcessReviewClient(service)
    platform.register_consumer(review_consumer(uow, service))


def _wire_point(platform: Platform) -> None:
    from haot.point.client import InProcessPointClient
    from haot.point.handlers import point_consumer
    from haot.point.service import PointService

    settings = platform.settings
    uow = platform.uow_factory("point")
    service = PointService(
        uow=uow,
        redis=platform.redis,
        expiry=timedelta(days=settings.point_expiry_days),
        refund_grace=timedelta(days=settings.point_refund_grace_days),
        earn_rate_percent=settings.point_earn_rate_percent,
    )
    platform.services["point"] = service
    platform.services["point.client"] = InProcessPointClient(service)
    platform.register_consumer(point_consumer(uow, service))

    async def expire_points(as_of: datetime, dry_run: bool) -> dict[str, int]:
        return await service.expire(now=as_of, dry_run=dry_run)

    platform.jobs.register("expire-points", expire_points, every_seconds=3600, dry_run=True)


SAGA_STEPS = ("lodging", "coupon", "point", "payment")


def _saga_port(platform: Platform, context: str) -> Any:
    """What the reservation saga calls ``context`` through: its in-process client where it runs in
    this process, else its HTTP client at ``HAOT_<CONTEXT>_URL`` (ADR 0018)."""
    if context in platform.contexts:
        return platform.services[f"{context}.client"]
    from haot.coupon.client import ERRORS as COUPON_ERRORS
    from haot.coupon.client import HttpCouponClient
    from haot.lodging.client import ERRORS as LODGING_ERRORS
    from haot.lodging.client import HttpLodgingClient
    from haot.payment.client import ERRORS as PAYMENT_ERRORS
    from haot.payment.client import HttpPaymentClient
    from haot.point.client import ERRORS as POINT_ERRORS
    from haot.point.client import HttpPointClient

    clients: dict[str, tuple[Any, Mapping[str, type[HaotError]]]] = {
        "lodging": (HttpLodgingClient, LODGING_ERRORS),
        "coupon": (HttpCouponClient, COUPON_ERRORS),
        "point": (HttpPointClient, POINT_ERRORS),
        "payment": (HttpPaymentClient, PAYMENT_ERRORS),
    }
    make, errors = clients[context]
    return make(platform.service_client(context, caller="reservation", errors=errors))


def _wire_reservation(platform: Platform) -> None:
    from haot.reservation.guests import guest_consumer
    from haot.reservation.handlers import reservation_consumer
    from haot.reservation.service import ReservationService

    settings = platform.settings
    uow = platform.uow_factory("reservation")
    # One transaction when every context the booking touches runs here and keeps its tables in
    # the reservation's database (their in-process clients' units of work join it; ADR 0013).
    one_transaction = settings.booking_transaction == "auto" and all(
        context in platform.contexts and uow.shares_database_with(platform.uow_factory(context))
        for context in SAGA_STEPS
    )
    ports = {context: _saga_port(platform, context) for context in SAGA_STEPS}
    platform.services["reservation"] = ReservationService(
        uow=uow,
        lodging=ports["lodging"],
        coupons=ports["coupon"],
        points=ports["point"],
        payments=ports["payment"],
        hold_ttl=timedelta(minutes=settings.reservation_hold_minutes),
        max_pending_per_user=settings.max_pending_reservations_per_user,
        one_transaction=one_transaction,
    )
    platform.register_consumer(reservation_consumer(uow))
    platform.register_consumer(guest_consumer(uow))


def _register_jobs(platform: Platform) -> None:
    from haot.reservation import jobs as reservation_jobs

    if "reservation" in platform.contexts:
        uow = platform.uow_factory("reservation")

        async def expire_holds(as_of: datetime, dry_run: bool) -> dict[str, int]:
            return {"expired": await reservation_jobs.expire_holds(uow, now=as_of)}

        async def complete_stays(as_of: datetime, dry_run: bool) -> dict[str, int]:
            return {"completed": await reservation_jobs.complete_stays(uow, now=as_of)}

        async def measure_overdue_holds() -> None:
            await reservation_jobs.measure_overdue_holds(uow)

        platform.jobs.register("expire-holds", expire_holds, every_seconds=15)
        platform.jobs.register("complete-stays", complete_stays, every_seconds=600)
        platform.on_scrape(measure_overdue_holds)
    if "payment" in platform.contexts:
        payments = platform.services["payment"]

        async def reconcile_payments(as_of: datetime, dry_run: bool) -> dict[str, int]:
            result: dict[str, int] = await payments.reconcile()
            return result

        platform.jobs.register("reconcile-payments", reconcile_payments, every_seconds=60)


def direct_routes(contexts: tuple[str, ...]) -> list[DirectRoute]:
    """Hot endpoints served before FastAPI's routing (``haot.platform.direct``)."""
    routes: list[DirectRoute] = []
    if "lodging" in contexts:
        from haot.lodging.api import direct_routes as lodging_routes

        routes += lodging_routes
    if "coupon" in contexts:
        from haot.coupon.api import direct_routes as coupon_routes

        routes += coupon_routes
    if "reservation" in contexts:
        from haot.reservation.api import direct_routes as reservation_routes

        routes += reservation_routes
    return routes


def internal_routers(contexts: tuple[str, ...]) -> list[APIRouter]:
    """What contexts ask of each other over HTTP (ADR 0018), served only where a context runs
    apart from its callers: the all-in-one app calls in-process and serves none."""
    if set(CONTEXTS) <= set(contexts):
        return []
    routers: list[APIRouter] = []
    if "lodging" in contexts:
        from haot.lodging.api import internal as lodging_internal

        routers.append(lodging_internal)
    if "coupon" in contexts:
        from haot.coupon.api import internal as coupon_internal

        routers.append(coupon_internal)
    if "point" in contexts:
        from haot.point.api import internal as point_internal

        routers.append(point_internal)
    if "payment" in contexts:
        from haot.payment.api import internal as payment_internal

        routers.append(payment_internal)
    return routers


def api_routers(contexts: tuple[str, ...]) -> list[APIRouter]:
    routers: list[APIRouter] = []
    if "identity" in contexts:
        from haot.identity.api import router as identity_router

        routers.append(identity_router)
    if "lodging" in contexts:
        from haot.lodging.api import router as lodging_router

        routers.append(lodging_router)
    if "coupon" in contexts:
        from haot.coupon.api import router as coupon_router

        routers.append(coupon_router)
    if "point" in contexts:
        from haot.point.api import router as point_router

        routers.append(point_router)
    if "reservation" in contexts:
        from haot.reservation.api import router as reservation_router

        routers.append(reservation_router)
    if "review" in contexts:
        from haot.review.api import router as review_router

        routers.append(review_router)
    if "payment" in contexts:
        from haot.payment.api import pages as payment_pages
        from haot.payment.api import router as payment_router

        routers += [payment_router, payment_pages]
    if contexts:  # not beside the pages alone: they run no jobs
        from haot.platform.jobs_api import router as jobs_router

        routers.append(jobs_router)
    return routers

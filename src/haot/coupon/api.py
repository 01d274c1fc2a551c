"""HTTP routes of the coupon context."""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import Response, StreamingResponse

from haot.coupon.domain import UserCouponStatus
from haot.coupon.issuance import Issuance
from haot.coupon.schemas import (
    ClaimAccepted,
    ClaimRead,
    CouponCreate,
    CouponOrder,
    CouponRead,
    CouponReserve,
    CouponUpdate,
    Discount,
    EventCreate,
    EventRead,
    EventUpdate,
    IssueRequest,
    IssueResult,
    UserCouponRead,
)
from haot.coupon.service import CouponNotFound, CouponService, EventNotFound
from haot.platform.container import Platform
from haot.platform.direct import DirectRequest, DirectResponse, DirectRoute
from haot.platform.domain_docs import problems
from haot.platform.errors import Unauthorized
from haot.platform.web import (
    API_PREFIX,
    AdminOnly,
    CurrentUser,
    Page,
    Paging,
    StreamUser,
    authenticate,
    get_platform,
    path_id,
    require_service,
)

router = APIRouter(prefix=API_PREFIX, tags=["coupon"])


# ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, which cost
# the claim hot path a thread hand-off per request (measured with ``make bench``).
async def coupon_service(request: Request) -> CouponService:
    service: CouponService = get_platform(request).services["coupon"]
    return service


async def issuance(request: Request) -> Issuance:
    service: Issuance = get_platform(request).services["coupon.issuance"]
    return service


Coupons = Annotated[CouponService, Depends(coupon_service)]
Issuing = Annotated[Issuance, Depends(issuance)]


# Admin: templates


@router.post(
    "/admin/coupons",
    status_code=status.HTTP_201_CREATED,
    response_model=CouponRead,
    responses=problems(401, 403, 422),
)
async def create_coupon(body: CouponCreate, _: AdminOnly, coupons: Coupons) -> CouponRead:
    return await coupons.create_coupon(body)


@router.get("/admin/coupons", response_model=Page[CouponRead], responses=problems(401, 403, 422))
async def list_coupons(
    _: AdminOnly,
    coupons: Coupons,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100)] = None,
    active: bool | None = None,
) -> Page[CouponRead]:
    return await coupons.list_coupons(q=q, active=active, paging=paging)


@router.get(
    "/admin/coupons/{coupon_id}", response_model=CouponRead, responses=problems(401, 403, 404)
)
async def read_coupon(coupon_id: str, _: AdminOnly, coupons: Coupons) -> CouponRead:
    return await coupons.coupon(path_id(coupon_id, CouponNotFound))


@router.patch(
    "/admin/coupons/{coupon_id}", response_model=CouponRead, responses=problems(401, 403, 404, 422)
)
async def update_coupon(
    coupon_id: str, body: CouponUpdate, _: AdminOnly, coupons: Coupons
) -> CouponRead:
    return await coupons.update_coupon(path_id(coupon_id, CouponNotFound), body)


@router.post(
    "/admin/coupons/{coupon_id}/issue",
    status_code=status.HTTP_201_CREATED,
    response_model=IssueResult,
    responses=problems(401, 403, 404, 409, 422),
)
async def issue_coupon(
    coupon_id: str, body: IssueRequest, _: AdminOnly, coupons: Coupons
) -> IssueResult:
    return await coupons.issue(path_id(coupon_id, CouponNotFound), body.user_ids)


# Admin: events


@router.post(
    "/admin/coupon-events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventRead,
    responses=problems(401, 403, 404, 422),
)
async def create_event(body: EventCreate, _: AdminOnly, coupons: Coupons) -> EventRead:
    return await coupons.create_event(body)


@router.get(
    "/admin/coupon-events", response_model=Page[EventRead], responses=problems(401, 403, 422)
)
async def list_all_events(_: AdminOnly, coupons: Coupons, paging: Paging) -> Page[EventRead]:
    return await coupons.list_events(live_only=False, paging=paging)


@router.patch(
    "/admin/coupon-events/{event_id}",
    response_model=EventRead,
    responses=problems(401, 403, 404, 409, 422),
)
async def update_event(
    event_id: str, body: EventUpdate, _: AdminOnly, coupons: Coupons
) -> EventRead:
    return await coupons.update_event(path_id(event_id, EventNotFound), body)


# Guests


@router.get("/coupon-events", response_model=Page[EventRead], responses=problems(422))
async def live_events(coupons: Coupons, paging: Paging) -> Page[EventRead]:
    """Open and upcoming events with their remaining stock."""
    return await coupons.list_events(live_only=True, paging=paging)


@router.get("/coupon-events/{event_id}", response_model=EventRead, responses=problems(404))
async def read_event(event_id: str, coupons: Coupons) -> EventRead:
    return await coupons.get_event(path_id(event_id, EventNotFound))


CLAIM_PATH = "/coupon-events/{event_id}/claims"


async def _claim(platform: Platform, raw_event_id: str, authorization: str | None) -> bytes:
    principal = await authenticate(platform, authorization)
    if principal is None:
        raise Unauthorized()
    issuing: Issuance = platform.services["coupon.issuance"]
    accepted = await issuing.claim(path_id(raw_event_id, EventNotFound), principal.user_id)
    return orjson.dumps({"claim_id": accepted.claim_id, "status": accepted.status})


@router.post(
    CLAIM_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ClaimAccepted,
    responses=problems(401, 404, 409, 429, 503),
)
async def claim_coupon(event_id: str, request: Request) -> Response:
    """Claim this event's coupon: 202 with a claim id once Redis admitted it; the coupon is
    issued moments later (poll the claim or watch ``/coupon-claims/stream``). In the full app
    this is served as a direct route (below), before FastAPI's routing."""
    body = await _claim(get_platform(request), event_id, request.headers.get("authorization"))
    return Response(body, status_code=status.HTTP_202_ACCEPTED, media_type="application/json")


async def _claim_direct(request: DirectRequest) -> DirectResponse:
    body = await _claim(
        request.platform, request.path_params["event_id"], request.header("authorization")
    )
    return DirectResponse(status.HTTP_202_ACCEPTED, body)


# The flash-crowd endpoint skips FastAPI's routing and dependency solving (haot.platform.direct).
direct_routes = [DirectRoute("POST", API_PREFIX + CLAIM_PATH, _claim_direct)]


@router.get("/coupon-claims/stream", responses=problems(401, 429))
async def claim_results(
    user: StreamUser,
    issuing: Issuing,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events with this user's claim outcomes (``event: claim``, each with an ``id:``).
    A reconnecting browser sends ``Last-Event-ID`` and first gets what it missed (outcomes are
    kept a day). Authenticated by the ``Authorization`` header or, for a browser's EventSource,
    the ``haot_session`` cookie (``POST /auth/session``). A user may hold a few streams at once
    (``HAOT_LIVE_STREAMS_PER_USER``); one more is 429 ``too_many_streams``."""
    return StreamingResponse(
        await issuing.results(user.user_id, last_event_id=last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/coupon-claims/{claim_id}", response_model=ClaimRead, responses=problems(401, 404))
async def claim_status(claim_id: str, user: CurrentUser, issuing: Issuing) -> ClaimRead:
    return await issuing.status(user.user_id, claim_id[:80])


@router.get("/coupons", response_model=Page[UserCouponRead], responses=problems(401, 422))
async def my_coupons(
    user: CurrentUser,
    coupons: Coupons,
    paging: Paging,
    status: UserCouponStatus | None = None,
) -> Page[UserCouponRead]:
    return await coupons.my_coupons(user.user_id, status=status, paging=paging)


# What the reservation saga asks of coupons in a split deployment (ADR 0018): never routed by the
# gateway, only for the reservation context's service token. Idempotent, so the client may send
# each again: the discount (a read); reserve (keyed by the reservation: a repeat for the
# reservation the coupon is reserved for answers its discount and changes nothing).
internal = APIRouter(prefix="/internal/v1/coupon", include_in_schema=False)
FromReservation = Annotated[str, require_service("coupon", "reservation")]


@internal.get("/user-coupons/{user_coupon_id}/discount", response_model=Discount)
async def internal_discount(
    user_coupon_id: uuid.UUID,
    order: Annotated[CouponOrder, Query()],
    _: FromReservation,
    coupons: Coupons,
) -> Discount:
    """The discount the coupon gives on this order, or ``coupon_not_usable``; changes nothing."""
    off = await coupons.discount_for(
        user_id=order.user_id,
        user_coupon_id=user_coupon_id,
        lodging_id=order.lodging_id,
        order_amount=order.order_amount,
    )
    return Discount(discount=off)


@internal.post("/user-coupons/{user_coupon_id}/reserve", response_model=Discount)
async def internal_reserve(
    user_coupon_id: uuid.UUID, body: CouponReserve, _: FromReservation, coupons: Coupons
) -> Discount:
    """ISSUED → RESERVED for the reservation; answers the discount."""
    off = await coupons.reserve(
        user_id=body.user_id,
        user_coupon_id=user_coupon_id,
        reservation_id=body.reservation_id,
        lodging_id=body.lodging_id,
        order_amount=body.order_amount,
    )
    return Discount(discount=off)

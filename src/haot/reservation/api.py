"""HTTP routes of the reservation context."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from haot.platform.container import Platform
from haot.platform.direct import DirectRequest, DirectResponse, DirectRoute, parse_body
from haot.platform.domain_docs import problems
from haot.platform.errors import Unauthorized
from haot.platform.idempotency import checked_key
from haot.platform.web import (
    API_PREFIX,
    AdminOnly,
    CurrentUser,
    HostOnly,
    Page,
    Paging,
    PlatformDep,
    authenticate,
    path_id,
)
from haot.reservation.domain import ReservationStatus
from haot.reservation.schemas import (
    CancellationTerms,
    CancelRequest,
    HostReservationRead,
    QuoteRead,
    ReservationCreated,
    ReservationRead,
    StayRequest,
)
from haot.reservation.service import ReservationNotFound, ReservationService

router = APIRouter(prefix=API_PREFIX, tags=["reservation"])


def _service(platform: Platform) -> ReservationService:
    service: ReservationService = platform.services["reservation"]
    return service


async def reservation_service(platform: PlatformDep) -> ReservationService:
    return _service(platform)


Reservations = Annotated[ReservationService, Depends(reservation_service)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


@router.post(
    "/reservations/quote", response_model=QuoteRead, responses=problems(401, 404, 409, 422)
)
async def quote(body: StayRequest, user: CurrentUser, reservations: Reservations) -> QuoteRead:
    return await reservations.quote(user, body)


@router.post(
    "/reservations",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationCreated,
    responses=problems(401, 404, 409, 422, 429),
)
async def create_reservation(
    body: StayRequest,
    user: CurrentUser,
    reservations: Reservations,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ReservationCreated:
    """Book a stay: every night held, the coupon reserved, the points held and the payment
    created, or none of it. With an Idempotency-Key, a retry of the same stay gets the first
    answer again (``Idempotent-Replayed: true``); the same key for another stay is 422. In the
    full app this is served as a direct route (below)."""
    key = checked_key(idempotency_key) if idempotency_key is not None else None
    booked = await reservations.book(user, body, idempotency_key=key)
    if booked.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return booked.created


async def _create_direct(request: DirectRequest) -> DirectResponse:
    user = await authenticate(request.platform, request.header("authorization"))
    if user is None:
        raise Unauthorized()
    stay = parse_body(StayRequest, request.body)
    key = request.header("idempotency-key")
    key = checked_key(key) if key is not None else None
    booked = await _service(request.platform).book(user, stay, idempotency_key=key)
    return DirectResponse(
        status.HTTP_201_CREATED,
        booked.created.model_dump_json().encode(),
        headers=((b"idempotent-replayed", b"true"),) if booked.replayed else (),
    )


# Every guest's booking skips FastAPI's routing and dependency solving (haot.platform.direct),
# and keeps its Idempotency-Key with the reservation, in the booking's transaction (ADR 0016).
direct_routes = [
    DirectRoute(
        "POST",
        API_PREFIX + "/reservations",
        _create_direct,
        reads_body=True,
        keeps_idempotency_key=True,
    )
]


@router.get("/reservations", response_model=Page[ReservationRead], responses=problems(401, 422))
async def my_reservations(
    user: CurrentUser,
    reservations: Reservations,
    paging: Paging,
    status: ReservationStatus | None = None,
) -> Page[ReservationRead]:
    return await reservations.list(paging=paging, user_id=user.user_id, status=status)


@router.get(
    "/reservations/{reservation_id}", response_model=ReservationRead, responses=problems(401, 404)
)
async def read_reservation(
    reservation_id: str, user: CurrentUser, reservations: Reservations
) -> ReservationRead:
    return await reservations.get_for(user, path_id(reservation_id, ReservationNotFound))


@router.get(
    "/reservations/{reservation_id}/cancellation",
    response_model=CancellationTerms,
    responses=problems(401, 404, 409),
)
async def cancellation_terms(
    reservation_id: str, user: CurrentUser, reservations: Reservations
) -> CancellationTerms:
    """What cancelling now would refund (the policy's tier for today), without cancelling: 409
    when the reservation can no longer be cancelled."""
    return await reservations.cancellation_terms(
        user, path_id(reservation_id, ReservationNotFound), by_host=False
    )


@router.post(
    "/reservations/{reservation_id}/cancel",
    response_model=ReservationRead,
    responses=problems(401, 404, 409, 422),
)
async def cancel_reservation(
    reservation_id: str,
    user: CurrentUser,
    reservations: Reservations,
    body: CancelRequest | None = None,
) -> ReservationRead:
    return await reservations.cancel(
        user,
        path_id(reservation_id, ReservationNotFound),
        by_host=False,
        reason=body.reason if body else "",
    )


@router.get(
    "/host/reservations",
    response_model=Page[HostReservationRead],
    responses=problems(401, 403, 422),
)
async def host_reservations(
    host: HostOnly,
    reservations: Reservations,
    paging: Paging,
    status: ReservationStatus | None = None,
    lodging_id: uuid.UUID | None = None,
) -> Page[HostReservationRead]:
    return await reservations.list_with_guests(
        paging=paging, host_id=host.user_id, lodging_id=lodging_id, status=status
    )


@router.get(
    "/host/reservations/{reservation_id}/cancellation",
    response_model=CancellationTerms,
    responses=problems(401, 403, 404, 409),
)
async def host_cancellation_terms(
    reservation_id: str, host: HostOnly, reservations: Reservations
) -> CancellationTerms:
    """What the host's cancel would refund the guest now (everything paid, and the points),
    without cancelling: 409 when the reservation can no longer be cancelled."""
    return await reservations.cancellation_terms(
        host, path_id(reservation_id, ReservationNotFound), by_host=True
    )


@router.post(
    "/host/reservations/{reservation_id}/cancel",
    response_model=ReservationRead,
    responses=problems(401, 403, 404, 409),
)
async def host_cancel(
    reservation_id: str,
    host: HostOnly,
    reservations: Reservations,
    body: CancelRequest | None = None,
) -> ReservationRead:
    return await reservations.cancel(
        host,
        path_id(reservation_id, ReservationNotFound),
        by_host=True,
        reason=body.reason if body else "",
    )


@router.get(
    "/admin/reservations",
    response_model=Page[HostReservationRead],
    responses=problems(401, 403, 422),
)
async def all_reservations(
    _: AdminOnly,
    reservations: Reservations,
    paging: Paging,
    status: ReservationStatus | None = None,
    user_id: uuid.UUID | None = None,
    host_id: uuid.UUID | None = None,
    lodging_id: uuid.UUID | None = None,
) -> Page[HostReservationRead]:
    return await reservations.list_with_guests(
        paging=paging, user_id=user_id, host_id=host_id, lodging_id=lodging_id, status=status
    )

"""HTTP routes of the point context."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import AwareDatetime

from haot.platform.domain_docs import problems
from haot.platform.web import (
    API_PREFIX,
    AdminOnly,
    CurrentUser,
    Page,
    Paging,
    PlatformDep,
    require_service,
)
from haot.point.domain import EntryType
from haot.point.schemas import (
    BalanceRead,
    DeductionCreate,
    EntryRead,
    GrantCreate,
    HoldCreate,
    Spendable,
)
from haot.point.service import PointService

router = APIRouter(prefix=API_PREFIX, tags=["point"])
# What the reservation saga asks of points in a split deployment (ADR 0018): never routed by the
# gateway, only for the reservation context's service token.
internal = APIRouter(prefix="/internal/v1/point", include_in_schema=False)
FromReservation = Annotated[str, require_service("point", "reservation")]


async def point_service(platform: PlatformDep) -> PointService:
    service: PointService = platform.services["point"]
    return service


Points = Annotated[PointService, Depends(point_service)]


@router.get("/points", response_model=BalanceRead, responses=problems(401))
async def my_balance(user: CurrentUser, points: Points) -> BalanceRead:
    return await points.balance(user.user_id)


@router.get("/points/history", response_model=Page[EntryRead], responses=problems(401, 422))
async def my_history(
    user: CurrentUser,
    points: Points,
    paging: Paging,
    type: EntryType | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[EntryRead]:
    return await points.history(
        user_id=user.user_id, type=type, since=since, until=until, paging=paging
    )


@router.post(
    "/admin/points/grants",
    status_code=status.HTTP_201_CREATED,
    response_model=EntryRead,
    responses=problems(401, 403, 422),
)
async def grant_points(body: GrantCreate, _: AdminOnly, points: Points) -> EntryRead:
    return await points.grant(body)


@router.post(
    "/admin/points/deductions",
    status_code=status.HTTP_201_CREATED,
    response_model=EntryRead,
    responses=problems(401, 403, 409, 422),
)
async def deduct_points(body: DeductionCreate, _: AdminOnly, points: Points) -> EntryRead:
    return await points.deduct(body)


@router.get("/admin/points", response_model=Page[EntryRead], responses=problems(401, 403, 422))
async def search_entries(
    _: AdminOnly,
    points: Points,
    paging: Paging,
    user_id: uuid.UUID | None = None,
    type: EntryType | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[EntryRead]:
    return await points.history(user_id=user_id, type=type, since=since, until=until, paging=paging)


@router.get(
    "/admin/points/users/{user_id}", response_model=BalanceRead, responses=problems(401, 403, 422)
)
async def user_balance(user_id: uuid.UUID, _: AdminOnly, points: Points) -> BalanceRead:
    return await points.balance(user_id)


@internal.get("/users/{user_id}/spendable", response_model=Spendable)
async def spendable(user_id: uuid.UUID, _: FromReservation, points: Points) -> Spendable:
    return Spendable(spendable=await points.spendable(user_id=user_id))


@internal.post("/holds", status_code=status.HTTP_204_NO_CONTENT)
async def hold(body: HoldCreate, _: FromReservation, points: Points) -> Response:
    """Set points aside for a reservation; a repeat for the same reservation changes nothing."""
    await points.hold(user_id=body.user_id, reservation_id=body.reservation_id, amount=body.amount)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

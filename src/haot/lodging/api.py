"""HTTP routes of the lodging context."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from haot.lodging.client import LodgingClient, StayQuote
from haot.lodging.domain import month_range
from haot.lodging.errors import InvalidMonth, LodgingNotFound, RoomTypeNotFound
from haot.lodging.schemas import (
    CalendarUpdate,
    HoldChanged,
    HostCalendar,
    LodgingCreate,
    LodgingDetail,
    LodgingRead,
    LodgingUpdate,
    PublicCalendar,
    RoomTypeCreate,
    RoomTypeRead,
    RoomTypeUpdate,
    SearchPage,
    StayHold,
    StayQuery,
    StayQuoteRead,
)
from haot.lodging.search import LodgingSearch, SearchQuery, Sort
from haot.lodging.service import LodgingService
from haot.platform.direct import DirectRequest, DirectResponse, DirectRoute
from haot.platform.domain_docs import problems
from haot.platform.web import (
    API_PREFIX,
    HostOnly,
    Page,
    Paging,
    PlatformDep,
    path_id,
    require_service,
)

router = APIRouter(prefix=API_PREFIX, tags=["lodging"])

Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


async def lodging_service(platform: PlatformDep) -> LodgingService:
    service: LodgingService = platform.services["lodging"]
    return service


async def lodging_search(platform: PlatformDep) -> LodgingSearch:
    search: LodgingSearch = platform.services["lodging.search"]
    return search


Lodgings = Annotated[LodgingService, Depends(lodging_service)]
Search = Annotated[LodgingSearch, Depends(lodging_search)]


def _month(month: str) -> str:
    try:
        month_range(month)
    except ValueError as exc:
        raise InvalidMonth() from exc
    return month


# Public reads


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """A search's query string in a canonical order (repeated names keep theirs), so that equal
    searches share one cache entry whichever order their parameters came in."""
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


def search_request_key(query_string: bytes) -> str:
    return canonical_query(query_pairs(query_string))


class SearchParams(BaseModel):
    """``GET /lodgings``'s query parameters: one model for the FastAPI route and the direct one,
    so both accept and refuse alike (other parameters are ignored, as FastAPI ignores them)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    region: str | None = Field(default=None, max_length=100)
    q: str | None = Field(default=None, max_length=100)
    check_in: date | None = None
    check_out: date | None = None
    guests: int = Field(default=1, ge=1, le=100)
    min_price: int | None = Field(default=None, ge=0, le=1_000_000_000)
    max_price: int | None = Field(default=None, ge=0, le=1_000_000_000)
    amenities: str | None = Field(default=None, max_length=500)
    sort: Sort = "newest"
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=20, ge=1, le=100)

    def query(self) -> SearchQuery:
        wanted = tuple(a.strip().lower() for a in (self.amenities or "").split(",") if a.strip())
        return SearchQuery(
            region=self.region or None,
            q=self.q or None,
            check_in=self.check_in,
            check_out=self.check_out,
            guests=self.guests,
            min_price=self.min_price,
            max_price=self.max_price,
            amenities=wanted,
            sort=self.sort,
            page=self.page,
            size=self.size,
        )


async def _search_direct(request: DirectRequest) -> DirectResponse | None:
    """Searches without FastAPI's routing and per-parameter dependency solving (a third of a
    cold search's CPU, ``make bench`` profile): a warm one is the stored bytes (one Redis round
    trip); a cold one is validated by ``SearchParams``, searched and stored. Parameters that do
    not validate go on to ``search_lodgings``, whose 422 is FastAPI's own; a refusal of the
    search itself (an impossible stay) is the same problem+json either way."""
    search: LodgingSearch = request.platform.services["lodging.search"]
    pairs = query_pairs(request.query_string)
    key = canonical_query(pairs)
    cached = await search.cached_search_json(key)
    if isinstance(cached, str):
        return DirectResponse(200, cached.encode())
    try:
        params = SearchParams.model_validate(dict(pairs))  # the last of repeated names, as FastAPI
    except ValidationError:
        return None
    page_json = await search.search_json(params.query(), request_key=key, missed=cached)
    return DirectResponse(200, page_json.encode())


# Searches are the busiest read (haot.platform.direct).
direct_routes = [DirectRoute("GET", API_PREFIX + "/lodgings", _search_direct)]


@router.get(
    "/lodgings",
    response_model=SearchPage,
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, **problems(422)},
)
async def search_lodgings(
    request: Request, search: Search, params: Annotated[SearchParams, Query()]
) -> Response:
    page_json = await search.search_json(
        params.query(), request_key=search_request_key(request.scope.get("query_string", b""))
    )
    return Response(page_json, media_type="application/json")


@router.get("/lodgings/{lodging_id}", response_model=LodgingDetail, responses=problems(404))
async def read_lodging(lodging_id: str, search: Search) -> LodgingDetail:
    return await search.detail(path_id(lodging_id, LodgingNotFound))


@router.get(
    "/lodgings/{lodging_id}/calendar", response_model=PublicCalendar, responses=problems(404, 422)
)
async def read_lodging_calendar(lodging_id: str, month: Month, search: Search) -> PublicCalendar:
    return await search.calendar(path_id(lodging_id, LodgingNotFound), _month(month))


# Host management


@router.post(
    "/host/lodgings",
    status_code=status.HTTP_201_CREATED,
    response_model=LodgingRead,
    responses=problems(401, 403, 422),
)
async def create_lodging(body: LodgingCreate, host: HostOnly, lodgings: Lodgings) -> LodgingRead:
    return await lodgings.create(host, body)


@router.get("/host/lodgings", response_model=Page[LodgingRead], responses=problems(401, 403))
async def list_my_lodgings(host: HostOnly, lodgings: Lodgings, paging: Paging) -> Page[LodgingRead]:
    return await lodgings.list_own(host, paging)


@router.get(
    "/host/lodgings/{lodging_id}", response_model=LodgingDetail, responses=problems(401, 403, 404)
)
async def read_my_lodging(lodging_id: str, host: HostOnly, lodgings: Lodgings) -> LodgingDetail:
    return await lodgings.get_own(host, path_id(lodging_id, LodgingNotFound))


@router.patch(
    "/host/lodgings/{lodging_id}",
    response_model=LodgingRead,
    responses=problems(401, 403, 404, 422),
)
async def update_lodging(
    lodging_id: str, body: LodgingUpdate, host: HostOnly, lodgings: Lodgings
) -> LodgingRead:
    return await lodgings.update(host, path_id(lodging_id, LodgingNotFound), body)


@router.delete(
    "/host/lodgings/{lodging_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 409),
)
async def delete_lodging(lodging_id: str, host: HostOnly, lodgings: Lodgings) -> Response:
    await lodgings.delete(host, path_id(lodging_id, LodgingNotFound))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/host/lodgings/{lodging_id}/room-types",
    status_code=status.HTTP_201_CREATED,
    response_model=RoomTypeRead,
    responses=problems(401, 403, 404, 422),
)
async def add_room_type(
    lodging_id: str, body: RoomTypeCreate, host: HostOnly, lodgings: Lodgings
) -> RoomTypeRead:
    return await lodgings.add_room_type(host, path_id(lodging_id, LodgingNotFound), body)


@router.get(
    "/host/room-types/{room_type_id}",
    response_model=RoomTypeRead,
    responses=problems(401, 403, 404),
)
async def read_room_type(room_type_id: str, host: HostOnly, lodgings: Lodgings) -> RoomTypeRead:
    return await lodgings.room_type(host, path_id(room_type_id, RoomTypeNotFound))


@router.patch(
    "/host/room-types/{room_type_id}",
    response_model=RoomTypeRead,
    responses=problems(401, 403, 404, 409, 422),
)
async def update_room_type(
    room_type_id: str, body: RoomTypeUpdate, host: HostOnly, lodgings: Lodgings
) -> RoomTypeRead:
    return await lodgings.update_room_type(host, path_id(room_type_id, RoomTypeNotFound), body)


@router.delete(
    "/host/room-types/{room_type_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 409),
)
async def delete_room_type(room_type_id: str, host: HostOnly, lodgings: Lodgings) -> Response:
    await lodgings.delete_room_type(host, path_id(room_type_id, RoomTypeNotFound))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/host/room-types/{room_type_id}/calendar",
    response_model=HostCalendar,
    responses=problems(401, 403, 404, 409, 422),
)
async def update_calendar(
    room_type_id: str, body: CalendarUpdate, host: HostOnly, lodgings: Lodgings
) -> HostCalendar:
    return await lodgings.update_calendar(host, path_id(room_type_id, RoomTypeNotFound), body)


@router.get(
    "/host/room-types/{room_type_id}/calendar",
    response_model=HostCalendar,
    responses=problems(401, 403, 404, 422),
)
async def read_calendar(
    room_type_id: str, month: Month, host: HostOnly, lodgings: Lodgings
) -> HostCalendar:
    return await lodgings.host_calendar(
        host, path_id(room_type_id, RoomTypeNotFound), _month(month)
    )


# What the reservation saga asks of lodging in a split deployment (ADR 0018): never routed by the
# gateway, only for the reservation context's service token. Idempotent, so the client may send
# each again: quote and availability (reads); hold (keyed by the reservation: a repeat answers the
# hold on record and takes nothing more); confirm and release (keyed by the reservation and
# applied once: a repeat changes nothing and answers ``changed: false``).
internal = APIRouter(prefix="/internal/v1/lodging", include_in_schema=False)
FromReservation = Annotated[str, require_service("lodging", "reservation")]


async def lodging_client(platform: PlatformDep) -> LodgingClient:
    client: LodgingClient = platform.services["lodging.client"]  # the in-process one
    return client


Rooms = Annotated[LodgingClient, Depends(lodging_client)]
StayParams = Annotated[StayQuery, Query()]


def stay_quote_read(quote: StayQuote) -> StayQuoteRead:
    return StayQuoteRead.model_validate(
        {
            "lodging_id": quote.lodging_id,
            "host_id": quote.host_id,
            "room_type_id": quote.room_type_id,
            "lodging_name": quote.lodging_name,
            "room_type_name": quote.room_type_name,
            "check_in": quote.check_in,
            "check_out": quote.check_out,
            "nights": [{"date": d, "price": p} for d, p in quote.nights],
            "cancellation_policy": [
                {"days_before": r.days_before, "refund_percent": r.refund_percent}
                for r in quote.cancellation_policy
            ],
        }
    )


@internal.get("/room-types/{room_type_id}/quote", response_model=StayQuoteRead)
async def internal_quote(
    room_type_id: uuid.UUID, stay: StayParams, _: FromReservation, rooms: Rooms
) -> StayQuoteRead:
    quote = await rooms.quote(room_type_id, stay.check_in, stay.check_out, stay.guests)
    return stay_quote_read(quote)


@internal.get("/room-types/{room_type_id}/availability", status_code=status.HTTP_204_NO_CONTENT)
async def internal_check_available(
    room_type_id: uuid.UUID, stay: StayParams, _: FromReservation, rooms: Rooms
) -> Response:
    """204 when the stay may be held right now (a pass promises nothing), else the refusal."""
    await rooms.check_available(room_type_id, stay.check_in, stay.check_out, stay.guests)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal.post("/holds", response_model=StayQuoteRead)
async def internal_hold(body: StayHold, _: FromReservation, rooms: Rooms) -> StayQuoteRead:
    """Hold every night for a reservation; a repeat for the same reservation answers the hold on
    record and takes nothing more."""
    quote = await rooms.hold(
        body.reservation_id, body.room_type_id, body.check_in, body.check_out, body.guests
    )
    return stay_quote_read(quote)


@internal.post("/holds/{reservation_id}/confirm", response_model=HoldChanged)
async def internal_confirm(
    reservation_id: uuid.UUID, _: FromReservation, rooms: Rooms
) -> HoldChanged:
    return HoldChanged(changed=await rooms.confirm(reservation_id))


@internal.post("/holds/{reservation_id}/release", response_model=HoldChanged)
async def internal_release(
    reservation_id: uuid.UUID, _: FromReservation, rooms: Rooms
) -> HoldChanged:
    return HoldChanged(changed=await rooms.release(reservation_id))

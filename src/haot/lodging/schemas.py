"""Request and response shapes of the lodging API (the public contract in SPEC.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from haot.platform.types import WebUrl

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Amenity = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40)
]
Url = WebUrl
Won = Annotated[int, Field(ge=0, le=100_000_000)]
Rooms = Annotated[int, Field(ge=0, le=10_000)]
Stay = Annotated[int, Field(ge=1, le=30)]  # nights; the platform's longest stay is 30

MAX_NIGHTS_PLATFORM = 30


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Region(BaseModel):
    city: Text
    district: Text


class RefundTier(BaseModel):
    """Refund ``refund_percent`` when cancelling at least ``days_before`` days before check-in."""

    days_before: Annotated[int, Field(ge=0, le=365)]
    refund_percent: Annotated[int, Field(ge=0, le=100)]


def _default_policy() -> list[RefundTier]:
    return [
        RefundTier(days_before=7, refund_percent=100),
        RefundTier(days_before=3, refund_percent=50),
        RefundTier(days_before=0, refund_percent=0),
    ]


class LodgingCreate(_Input):
    name: Text
    description: LongText = ""
    address: Text
    region: Region
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    amenities: Annotated[list[Amenity], Field(max_length=50)] = []
    image_urls: Annotated[list[Url], Field(max_length=30)] = []
    max_guests: Annotated[int, Field(ge=1, le=100)] = 2
    check_in_time: time = time(15, 0)
    check_out_time: time = time(11, 0)
    max_nights: Annotated[int, Field(ge=1, le=MAX_NIGHTS_PLATFORM)] = MAX_NIGHTS_PLATFORM
    cancellation_policy: Annotated[list[RefundTier], Field(min_length=1, max_length=10)] = Field(
        default_factory=_default_policy
    )

    @model_validator(mode="after")
    def _policy_tiers_distinct(self) -> LodgingCreate:
        check_policy(self.cancellation_policy)
        return self


class LodgingUpdate(_Input):
    name: Text | None = None
    description: LongText | None = None
    address: Text | None = None
    region: Region | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    amenities: Annotated[list[Amenity], Field(max_length=50)] | None = None
    image_urls: Annotated[list[Url], Field(max_length=30)] | None = None
    max_guests: Annotated[int, Field(ge=1, le=100)] | None = None
    check_in_time: time | None = None
    check_out_time: time | None = None
    max_nights: Annotated[int, Field(ge=1, le=MAX_NIGHTS_PLATFORM)] | None = None
    cancellation_policy: Annotated[list[RefundTier], Field(min_length=1, max_length=10)] | None = (
        None
    )

    @model_validator(mode="after")
    def _policy_tiers_distinct(self) -> LodgingUpdate:
        if self.cancellation_policy is not None:
            check_policy(self.cancellation_policy)
        return self


def check_policy(tiers: list[RefundTier]) -> None:
    days = [t.days_before for t in tiers]
    if len(days) != len(set(days)):
        raise ValueError("cancellation_policy tiers must have distinct days_before")


class RoomTypeCreate(_Input):
    name: Text
    capacity: Annotated[int, Field(ge=1, le=100)]
    total_rooms: Annotated[int, Field(ge=1, le=10_000)]


class RoomTypeUpdate(_Input):
    name: Text | None = None
    capacity: Annotated[int, Field(ge=1, le=100)] | None = None
    total_rooms: Annotated[int, Field(ge=1, le=10_000)] | None = None


class RoomTypeRead(BaseModel):
    id: uuid.UUID
    lodging_id: uuid.UUID
    name: str
    capacity: int
    total_rooms: int


class LodgingRead(BaseModel):
    id: uuid.UUID
    host_id: uuid.UUID
    name: str
    description: str
    address: str
    region: Region
    latitude: float
    longitude: float
    amenities: list[str]
    image_urls: list[str]
    max_guests: int
    check_in_time: time
    check_out_time: time
    max_nights: int
    cancellation_policy: list[RefundTier]
    rating: float | None
    review_count: int
    created_at: datetime
    updated_at: datetime


class LodgingDetail(LodgingRead):
    room_types: list[RoomTypeRead]


class CalendarUpdate(_Input):
    """Applies to every night in ``[start, end)``; omitted fields keep their current values.
    Nights that do not exist yet are opened and need ``price``."""

    start: date
    end: date
    price: Won | None = None
    weekend_price: Won | None = None
    total_rooms: Rooms | None = None
    closed: bool | None = None
    min_stay: Stay | None = None
    max_stay: Stay | None = None

    @model_validator(mode="after")
    def _range_ok(self) -> CalendarUpdate:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.end - self.start).days > 366:
            raise ValueError("a calendar update covers at most 366 nights")
        if self.min_stay and self.max_stay and self.min_stay > self.max_stay:
            raise ValueError("min_stay must not exceed max_stay")
        return self


class HostNight(BaseModel):
    date: date
    price: int
    total: int
    held: int
    sold: int
    closed: bool
    min_stay: int
    max_stay: int


class HostCalendar(BaseModel):
    room_type_id: uuid.UUID
    month: str
    days: list[HostNight]


class PublicNight(BaseModel):
    date: date
    price: int
    available: int
    closed: bool


class PublicRoomTypeCalendar(BaseModel):
    room_type_id: uuid.UUID
    name: str
    capacity: int
    days: list[PublicNight]


class PublicCalendar(BaseModel):
    lodging_id: uuid.UUID
    month: str
    room_types: list[PublicRoomTypeCalendar]


class NightPrice(BaseModel):
    date: date
    price: int


class SearchItem(BaseModel):
    id: uuid.UUID
    name: str
    region: Region
    address: str
    latitude: float
    longitude: float
    amenities: list[str]
    image_urls: list[str]
    max_guests: int
    rating: float | None
    review_count: int
    created_at: datetime
    room_type_id: uuid.UUID | None = None
    room_type_name: str | None = None
    total_price: int | None = None
    nights: list[NightPrice] | None = None
    min_night_price: int | None = None


class SearchPage(BaseModel):
    items: list[SearchItem]
    page: int
    size: int
    total: int


# Internal routes (ADR 0018): what the reservation saga asks of lodging in a split deployment.
# Bounds as the reservation's own StayRequest; the stay rules themselves are the inventory's.
Guests = Annotated[int, Field(ge=1, le=100)]


class StayQuery(_Input):
    check_in: date
    check_out: date
    guests: Guests


class StayHold(_Input):
    reservation_id: uuid.UUID
    room_type_id: uuid.UUID
    check_in: date
    check_out: date
    guests: Guests


class StayQuoteRead(BaseModel):
    """``haot.lodging.client.StayQuote`` on the wire."""

    lodging_id: uuid.UUID
    host_id: uuid.UUID
    room_type_id: uuid.UUID
    lodging_name: str
    room_type_name: str
    check_in: date
    check_out: date
    nights: list[NightPrice]
    cancellation_policy: list[RefundTier]


class HoldChanged(BaseModel):
    changed: bool

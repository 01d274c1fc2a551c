"""Shapes of the reservation API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from haot.reservation.domain import ReservationStatus


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StayRequest(_Input):
    room_type_id: uuid.UUID
    check_in: date
    check_out: date
    guests: Annotated[int, Field(ge=1, le=100)]
    user_coupon_id: uuid.UUID | None = None
    points: Annotated[int, Field(ge=0, le=100_000_000)] = 0


class NightPrice(BaseModel):
    date: date
    price: int


class QuoteRead(BaseModel):
    room_type_id: uuid.UUID
    lodging_id: uuid.UUID
    check_in: date
    check_out: date
    nights: list[NightPrice]
    subtotal: int
    coupon_discount: int
    points_used: int
    amount: int


class ReservationCreated(BaseModel):
    id: uuid.UUID
    status: ReservationStatus
    expires_at: datetime
    amount: int
    payment_id: str | None
    checkout_url: str | None


class CancellationTerms(BaseModel):
    """What cancelling now would give back: ``refund_amount`` won of the payment
    (``refund_percent`` of it) and ``points_refund`` points."""

    refund_percent: int
    refund_amount: int
    points_refund: int


class CancelRequest(_Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""


class ReservationRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    lodging_id: uuid.UUID
    room_type_id: uuid.UUID
    lodging_name: str
    room_type_name: str
    check_in: date
    check_out: date
    guests: int
    nights: list[NightPrice]
    subtotal: int
    coupon_discount: int
    points_used: int
    amount: int
    user_coupon_id: uuid.UUID | None
    status: ReservationStatus
    payment_id: str | None
    checkout_url: str | None
    expires_at: datetime
    refund_amount: int | None
    failure_reason: str | None
    cancelled_by: str | None
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None


class HostReservationRead(ReservationRead):
    """A reservation as its host (or an admin) sees it: with the guest's name, as the guest last
    gave it (None for accounts that have not announced one since names were kept here)."""

    guest_name: str | None = None

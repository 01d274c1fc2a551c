"""Shapes of the payment API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from haot.payment.domain import PaymentStatus


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    reservation_id: uuid.UUID
    user_id: uuid.UUID
    order_name: str
    amount: int
    currency: str
    status: PaymentStatus
    cancelled_amount: int
    failure_reason: str | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CreatedPayment(BaseModel):
    payment_id: str
    checkout_url: str


class PaymentCreate(BaseModel):
    """What the reservation saga asks for (an internal route, ADR 0018): one payment per
    reservation."""

    model_config = ConfigDict(extra="forbid")

    reservation_id: uuid.UUID
    user_id: uuid.UUID
    amount: Annotated[int, Field(gt=0)]
    order_name: Annotated[str, Field(max_length=1000)]  # the payment keeps its first 200

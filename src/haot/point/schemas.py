"""Shapes of the point API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from haot.point.domain import EntryType

Points = Annotated[int, Field(ge=1, le=100_000_000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BalanceRead(BaseModel):
    balance: int
    held: int
    expiring_30d: int


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    type: EntryType
    amount: int
    reservation_id: uuid.UUID | None
    reason: str
    created_at: datetime


class GrantCreate(_Input):
    user_id: uuid.UUID
    amount: Points
    reason: Reason
    expires_at: AwareDatetime | None = None


class DeductionCreate(_Input):
    user_id: uuid.UUID
    amount: Points
    reason: Reason


class Spendable(BaseModel):
    spendable: int


class HoldCreate(_Input):
    user_id: uuid.UUID
    reservation_id: uuid.UUID
    amount: Points

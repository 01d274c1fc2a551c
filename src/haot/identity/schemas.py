"""Request and response shapes of the identity API. Inputs forbid unknown fields, so a client
cannot mass-assign ``role`` or ``active``."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from haot.identity.domain import MAX_PASSWORD_LENGTH, Gender
from haot.platform.auth import Role
from haot.platform.clock import seoul_today

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 \-]{6,30}$")
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


def _not_in_the_future(value: date) -> date:
    if value > seoul_today():
        raise ValueError("birth_date cannot be in the future")
    return value


BirthDate = Annotated[date, Field(ge=date(1900, 1, 1)), AfterValidator(_not_in_the_future)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignUp(_Input):
    email: EmailStr
    password: Password
    name: Name
    phone: Phone | None = None
    birth_date: BirthDate | None = None
    gender: Gender | None = None
    host: bool = False


class LogIn(_Input):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Password


class RefreshRequest(_Input):
    refresh_token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class UserUpdate(_Input):
    """Absent fields stay as they are; ``null`` clears an optional field (not the name)."""

    name: Name | None = None
    phone: Phone | None = None
    birth_date: BirthDate | None = None
    gender: Gender | None = None

    @field_validator("name")
    @classmethod
    def _name_is_required(cls, value: str | None) -> str:
        # Runs only when the client sent the field: an explicit null would blank a required column.
        if value is None:
            raise ValueError("name cannot be null")
        return value


class PasswordChange(_Input):
    current_password: Password
    new_password: Password


class AdminUserUpdate(_Input):
    role: Role | None = None
    active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    phone: str | None
    birth_date: date | None
    gender: Gender | None
    role: Role
    active: bool
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int

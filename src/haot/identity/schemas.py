"""Request and response shapes of the identity API. Inputs forbid unknown fields, so a client
cannot mass-assign ``role`` or ``active``."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from haot.identity.domain import MAX_PASSWORD_LENGTH, Gender
from haot.platform.auth import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 \-]{6,30}$")
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignUp(_Input):
    email: EmailStr
    password: Password
    name: Name
    phone: Phone | None = None
    birth_date: date | None = None
    gender: Gender | None = None
    host: bool = False


class LogIn(_Input):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Password


class RefreshRequest(_Input):
    refresh_token: Annotated[str, StringConstraints(min_length=10, max_length=200)]


class UserUpdate(_Input):
    name: Name | None = None
    phone: Phone | None = None
    birth_date: date | None = None
    gender: Gender | None = None


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
    token_type: str = "Bearer"
    expires_in: int

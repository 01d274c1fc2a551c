"""The identity context's public interface for other contexts."""

from __future__ import annotations

import uuid
from typing import Protocol

from haot.identity.schemas import UserRead
from haot.identity.service import IdentityService


class IdentityClient(Protocol):
    async def get_user(self, user_id: uuid.UUID) -> UserRead: ...


class InProcessIdentityClient:
    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def get_user(self, user_id: uuid.UUID) -> UserRead:
        return await self._service.get(user_id)

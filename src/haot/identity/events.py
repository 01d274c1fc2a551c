"""Events the identity context emits (topic ``haot.identity``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from haot.platform.events import EventBody


class _UserEvent(EventBody):
    user_id: uuid.UUID

    def aggregate_id(self) -> str:
        return str(self.user_id)


class UserRegistered(_UserEvent):
    TYPE: ClassVar[str] = "identity.user_registered"
    role: str
    # Added later: events written before carry none (read as ""). Hosts see it beside their
    # guests' reservations (the reservation context keeps its own copy).
    name: str = ""


class UserRenamed(_UserEvent):
    TYPE: ClassVar[str] = "identity.user_renamed"
    name: str


class UserRoleChanged(_UserEvent):
    TYPE: ClassVar[str] = "identity.user_role_changed"
    old_role: str
    new_role: str


class UserDeactivated(_UserEvent):
    TYPE: ClassVar[str] = "identity.user_deactivated"


class UserReactivated(_UserEvent):
    TYPE: ClassVar[str] = "identity.user_reactivated"


class TokensRevoked(_UserEvent):
    """Every access token of the user issued at or before ``before`` (epoch seconds) is void."""

    TYPE: ClassVar[str] = "identity.tokens_revoked"
    before: float

"""How the identity context reacts to its own events: revocations land even when the direct
stamp after the commit failed (Redis down for a moment), because the outbox retries them."""

from __future__ import annotations

import uuid

from haot.identity import events
from haot.identity.service import IdentityService
from haot.platform.events import Event
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory


def identity_consumer(uow: UnitOfWorkFactory, identity: IdentityService) -> Consumer:
    async def stamp(unit: UnitOfWork, event: Event) -> None:
        await identity.apply_revocation(
            uuid.UUID(event.payload["user_id"]), float(event.payload["before"])
        )

    return Consumer("identity.revocations", uow, {events.TOKENS_REVOKED: stamp})

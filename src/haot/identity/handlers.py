"""How the identity context reacts to its own events: revocations land even when the direct
stamp after the commit failed (Redis down for a moment), because the outbox retries them."""

from __future__ import annotations

from haot.identity.events import TokensRevoked
from haot.identity.service import IdentityService
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory


def identity_consumer(uow: UnitOfWorkFactory, identity: IdentityService) -> Consumer:
    async def stamp(unit: UnitOfWork, event: TokensRevoked) -> None:
        await identity.apply_revocation(event.user_id, event.before)

    return Consumer("identity.revocations", uow).on(TokensRevoked, stamp)

"""Guests' names as the identity context announces them, kept for the host's view of their
reservations (``identity.user_registered``, ``identity.user_renamed``; one partition per user, so
a rename never arrives before the registration it follows)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haot.identity.events import UserRegistered, UserRenamed
from haot.platform.clock import utcnow
from haot.platform.inbox import Consumer
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.reservation.models import Guest

_GUESTS = cast(Table, Guest.__table__)


async def _name(uow: UnitOfWork, user_id: uuid.UUID, name: str, *, rename: bool) -> None:
    """Record ``name``; a registration does not overwrite a name already recorded."""
    dialect = uow.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(_GUESTS).values(user_id=user_id, name=name, updated_at=utcnow())
    if rename:
        statement = statement.on_conflict_do_update(
            index_elements=[_GUESTS.c.user_id],
            set_={"name": statement.excluded.name, "updated_at": statement.excluded.updated_at},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[_GUESTS.c.user_id])
    await uow.session.execute(statement)


async def on_registered(uow: UnitOfWork, event: UserRegistered) -> None:
    if event.name:  # registrations announced before names were carried have none
        await _name(uow, event.user_id, event.name, rename=False)


async def on_renamed(uow: UnitOfWork, event: UserRenamed) -> None:
    await _name(uow, event.user_id, event.name, rename=True)


def guest_consumer(uow: UnitOfWorkFactory) -> Consumer:
    return (
        Consumer("reservation.guests", uow)
        .on(UserRegistered, on_registered)
        .on(UserRenamed, on_renamed)
    )


async def names_of(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(user_ids)
    if not wanted:
        return {}
    rows = await session.execute(select(Guest.user_id, Guest.name).where(Guest.user_id.in_(wanted)))
    return {row.user_id: row.name for row in rows}

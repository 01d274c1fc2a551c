"""Named queries of the identity context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haot.identity.models import RefreshToken, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        return (
            await self.session.scalars(select(User).where(User.id == user_id).with_for_update())
        ).one_or_none()

    async def get_by_email(self, email: str) -> User | None:
        return (await self.session.scalars(select(User).where(User.email == email))).one_or_none()

    def add(self, user: User) -> None:
        self.session.add(user)

    async def search(
        self,
        *,
        q: str | None,
        role: str | None,
        active: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[User], int]:
        conditions = []
        if q:
            # autoescape: a '%' or '_' in the query is a character to find, not a wildcard.
            needle = q.lower()
            conditions.append(
                or_(
                    User.email.contains(needle, autoescape=True),
                    func.lower(User.name).contains(needle, autoescape=True),
                )
            )
        if role:
            conditions.append(User.role == role)
        if active is not None:
            conditions.append(User.active.is_(active))
        total = (
            await self.session.execute(select(func.count()).select_from(User).where(*conditions))
        ).scalar_one()
        rows = (
            await self.session.scalars(
                select(User)
                .where(*conditions)
                .order_by(User.created_at.desc(), User.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return rows, int(total)


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, token: RefreshToken) -> None:
        self.session.add(token)

    async def get_by_digest(self, digest: str) -> RefreshToken | None:
        return (
            await self.session.scalars(
                select(RefreshToken).where(RefreshToken.token_digest == digest)
            )
        ).one_or_none()

    async def mark_used(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Atomically claim the token for rotation; False if it was already used or revoked
        (the conditional UPDATE makes two concurrent refreshes with one token yield one winner)."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_all_for_user(self, user_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

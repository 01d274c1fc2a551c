"""The point context's public interface for other contexts (the reservation saga)."""

from __future__ import annotations

import uuid

from haot.point.service import PointService


class InProcessPointClient:
    """Satisfies ``haot.reservation.ports.PointPort`` in all-in-one mode."""

    def __init__(self, service: PointService) -> None:
        self._service = service

    async def spendable(self, *, user_id: uuid.UUID) -> int:
        return await self._service.spendable(user_id=user_id)

    async def hold(self, *, user_id: uuid.UUID, reservation_id: uuid.UUID, amount: int) -> None:
        await self._service.hold(user_id=user_id, reservation_id=reservation_id, amount=amount)

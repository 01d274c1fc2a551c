"""The point context's public interface for other contexts (the reservation saga): in-process in
the all-in-one app, over HTTP to the point service in a split deployment (ADR 0018). Both raise
the same errors."""

from __future__ import annotations

import uuid

from haot.platform.service_client import ServiceClient
from haot.point.service import InsufficientPoints, PointService

# The refusals the point service answers, as the in-process client raises them.
ERRORS = {InsufficientPoints.code: InsufficientPoints}


class InProcessPointClient:
    """Satisfies ``haot.reservation.ports.PointPort`` in all-in-one mode."""

    def __init__(self, service: PointService) -> None:
        self._service = service

    async def spendable(self, *, user_id: uuid.UUID) -> int:
        return await self._service.spendable(user_id=user_id)

    async def hold(self, *, user_id: uuid.UUID, reservation_id: uuid.UUID, amount: int) -> None:
        await self._service.hold(user_id=user_id, reservation_id=reservation_id, amount=amount)


class HttpPointClient:
    """Satisfies ``haot.reservation.ports.PointPort`` against the point service."""

    def __init__(self, http: ServiceClient) -> None:
        self._http = http

    async def spendable(self, *, user_id: uuid.UUID) -> int:
        answer = await self._http.call(
            "GET", f"/internal/v1/point/users/{user_id}/spendable", idempotent=True
        )
        return int(answer["spendable"])

    async def hold(self, *, user_id: uuid.UUID, reservation_id: uuid.UUID, amount: int) -> None:
        # Keyed by the reservation: the point service applies a repeat once.
        await self._http.call(
            "POST",
            "/internal/v1/point/holds",
            json={
                "user_id": str(user_id),
                "reservation_id": str(reservation_id),
                "amount": amount,
            },
            idempotent=True,
        )

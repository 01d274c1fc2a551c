"""The lodging context's public interface for other contexts (the reservation saga): the client
Protocol with its in-process implementation, the errors it raises, and the stay rule callers may
check locally before they call (it needs no data, so it costs no call in a split deployment)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Protocol

from haot.lodging.domain import stay_problem
from haot.lodging.errors import InvalidStay
from haot.lodging.inventory import HoldReleased, Inventory, SoldOut, StayQuote

__all__ = [
    "HoldReleased",
    "InProcessLodgingClient",
    "InvalidStay",
    "LodgingClient",
    "SoldOut",
    "StayQuote",
    "check_stay",
]


def check_stay(check_in: date, check_out: date, *, today: date) -> None:
    """Raise ``InvalidStay`` for a stay no room can be booked for (past, empty, too long)."""
    if problem := stay_problem(check_in, check_out, today=today):
        raise InvalidStay(problem)


class LodgingClient(Protocol):
    async def quote(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> StayQuote: ...

    async def check_available(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> None:
        """Raise ``SoldOut`` (or ``InvalidStay``) early for a stay ``hold`` would refuse for its
        nights right now; a pass promises nothing."""

    async def hold(
        self,
        reservation_id: uuid.UUID,
        room_type_id: uuid.UUID,
        check_in: date,
        check_out: date,
        guests: int,
    ) -> StayQuote: ...

    async def confirm(self, reservation_id: uuid.UUID) -> bool: ...

    async def release(self, reservation_id: uuid.UUID) -> bool: ...


class InProcessLodgingClient:
    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    async def quote(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> StayQuote:
        return await self._inventory.quote(room_type_id, check_in, check_out, guests)

    async def check_available(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> None:
        await self._inventory.check_available(room_type_id, check_in, check_out, guests)

    async def hold(
        self,
        reservation_id: uuid.UUID,
        room_type_id: uuid.UUID,
        check_in: date,
        check_out: date,
        guests: int,
    ) -> StayQuote:
        return await self._inventory.hold(reservation_id, room_type_id, check_in, check_out, guests)

    async def confirm(self, reservation_id: uuid.UUID) -> bool:
        return await self._inventory.confirm(reservation_id)

    async def release(self, reservation_id: uuid.UUID) -> bool:
        return await self._inventory.release(reservation_id)

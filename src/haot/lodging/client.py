"""The lodging context's public interface for other contexts (the reservation saga)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Protocol

from haot.lodging.inventory import HoldReleased, Inventory, SoldOut, StayQuote

__all__ = ["HoldReleased", "InProcessLodgingClient", "LodgingClient", "SoldOut", "StayQuote"]


class LodgingClient(Protocol):
    async def quote(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> StayQuote: ...

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

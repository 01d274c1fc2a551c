"""The lodging context's public interface for other contexts (the reservation saga): the client
Protocol with its in-process implementation and its HTTP one (a split deployment, ADR 0018), the
errors both raise, and the stay rule callers may check locally before they call (it needs no data,
so it costs no call in a split deployment)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Protocol
from urllib.parse import urlencode

from haot.lodging.domain import RefundRule, stay_problem
from haot.lodging.errors import InvalidStay, LodgingNotFound, RoomTypeNotFound
from haot.lodging.inventory import HoldReleased, Inventory, SoldOut, StayQuote
from haot.platform.errors import HaotError
from haot.platform.service_client import ServiceClient

__all__ = [
    "ERRORS",
    "HoldReleased",
    "HttpLodgingClient",
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


# The refusals the lodging service answers to these calls, as the in-process client raises them.
ERRORS: dict[str, type[HaotError]] = {
    error.code: error
    for error in (SoldOut, HoldReleased, InvalidStay, RoomTypeNotFound, LodgingNotFound)
}


def _stay_quote(answer: dict[str, Any]) -> StayQuote:
    return StayQuote(
        lodging_id=uuid.UUID(answer["lodging_id"]),
        host_id=uuid.UUID(answer["host_id"]),
        room_type_id=uuid.UUID(answer["room_type_id"]),
        lodging_name=answer["lodging_name"],
        room_type_name=answer["room_type_name"],
        check_in=date.fromisoformat(answer["check_in"]),
        check_out=date.fromisoformat(answer["check_out"]),
        nights=[(date.fromisoformat(n["date"]), int(n["price"])) for n in answer["nights"]],
        cancellation_policy=[
            RefundRule(days_before=int(r["days_before"]), refund_percent=int(r["refund_percent"]))
            for r in answer["cancellation_policy"]
        ],
    )


def _stay_query(check_in: date, check_out: date, guests: int) -> str:
    return urlencode(
        {"check_in": check_in.isoformat(), "check_out": check_out.isoformat(), "guests": guests}
    )


class HttpLodgingClient:
    """Satisfies ``LodgingClient`` against the lodging service. Every call is idempotent (reads,
    or keyed by the reservation and applied once), so each may be sent again."""

    def __init__(self, http: ServiceClient) -> None:
        self._http = http

    async def quote(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> StayQuote:
        answer = await self._http.call(
            "GET",
            f"/internal/v1/lodging/room-types/{room_type_id}/quote?"
            + _stay_query(check_in, check_out, guests),
            idempotent=True,
        )
        return _stay_quote(answer)

    async def check_available(
        self, room_type_id: uuid.UUID, check_in: date, check_out: date, guests: int
    ) -> None:
        await self._http.call(
            "GET",
            f"/internal/v1/lodging/room-types/{room_type_id}/availability?"
            + _stay_query(check_in, check_out, guests),
            idempotent=True,
        )

    async def hold(
        self,
        reservation_id: uuid.UUID,
        room_type_id: uuid.UUID,
        check_in: date,
        check_out: date,
        guests: int,
    ) -> StayQuote:
        # Keyed by the reservation: a repeat answers the hold on record and takes nothing more.
        answer = await self._http.call(
            "POST",
            "/internal/v1/lodging/holds",
            json={
                "reservation_id": str(reservation_id),
                "room_type_id": str(room_type_id),
                "check_in": check_in.isoformat(),
                "check_out": check_out.isoformat(),
                "guests": guests,
            },
            idempotent=True,
        )
        return _stay_quote(answer)

    async def confirm(self, reservation_id: uuid.UUID) -> bool:
        # Keyed by the reservation, applied once (a repeat answers False).
        answer = await self._http.call(
            "POST", f"/internal/v1/lodging/holds/{reservation_id}/confirm", idempotent=True
        )
        return bool(answer["changed"])

    async def release(self, reservation_id: uuid.UUID) -> bool:
        # Keyed by the reservation, applied once (a repeat answers False).
        answer = await self._http.call(
            "POST", f"/internal/v1/lodging/holds/{reservation_id}/release", idempotent=True
        )
        return bool(answer["changed"])

"""Pure point rules: earliest-expiry-first allocation, refund placement, earn amount."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class EntryType(StrEnum):
    EARN = "EARN"
    USE = "USE"
    CANCEL_USE = "CANCEL_USE"
    EXPIRE = "EXPIRE"
    ADMIN_GRANT = "ADMIN_GRANT"
    ADMIN_DEDUCT = "ADMIN_DEDUCT"


@dataclass(frozen=True, slots=True)
class LotView:
    id: uuid.UUID
    remaining: int
    expires_at: datetime
    created_at: datetime


def allocate(lots: Sequence[LotView], amount: int, *, now: datetime) -> list[tuple[uuid.UUID, int]]:
    """Take ``amount`` from live lots, earliest expiry first (then oldest). Raises ValueError when
    the live lots hold less than ``amount``; never takes from an expired lot."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    live = sorted(
        (lot for lot in lots if lot.remaining > 0 and lot.expires_at > now),
        key=lambda lot: (lot.expires_at, lot.created_at, lot.id),
    )
    taken: list[tuple[uuid.UUID, int]] = []
    left = amount
    for lot in live:
        if left == 0:
            break
        take = min(lot.remaining, left)
        taken.append((lot.id, take))
        left -= take
    if left:
        raise ValueError(f"short by {left}")
    return taken


@dataclass(frozen=True, slots=True)
class AllocationView:
    lot_id: uuid.UUID
    amount: int
    returned: int
    expires_at: datetime


def place_refund(allocations: Sequence[AllocationView], amount: int) -> list[tuple[uuid.UUID, int]]:
    """Where ``amount`` goes back: into the lots it came from, latest expiry first (the guest keeps
    the longest-lived points). Raises ValueError when more is asked back than was taken."""
    ordered = sorted(allocations, key=lambda a: (a.expires_at, a.lot_id), reverse=True)
    placed: list[tuple[uuid.UUID, int]] = []
    left = amount
    for allocation in ordered:
        if left == 0:
            break
        room = allocation.amount - allocation.returned
        give = min(room, left)
        if give:
            placed.append((allocation.lot_id, give))
            left -= give
    if left:
        raise ValueError(f"cannot return {left} more than was taken")
    return placed


def restored_expiry(original: datetime, *, now: datetime, grace: timedelta) -> datetime:
    """A restored lot keeps its expiry, unless that has passed: then it lives ``grace`` longer."""
    return original if original > now else now + grace


def earned_points(paid_amount: int, rate_percent: float) -> int:
    """``rate_percent`` of ``paid_amount``, rounded down, in decimal arithmetic: in binary floating
    point 10,000 * 0.57 is 5,699.999..., which would round 57 points down to 56."""
    return int(Decimal(paid_amount) * Decimal(str(rate_percent)) // 100)

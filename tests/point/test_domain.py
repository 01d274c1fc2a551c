"""The pure point rules, table-driven: allocation, refund placement, restored expiry, earning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from haot.point.domain import (
    AllocationView,
    LotView,
    allocate,
    earned_points,
    place_refund,
    restored_expiry,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A, B, C, D = (uuid.UUID(int=n) for n in (1, 2, 3, 4))


def lot(
    id: uuid.UUID, remaining: int, expires_in_days: float, created_days_ago: float = 10
) -> LotView:
    return LotView(
        id=id,
        remaining=remaining,
        expires_at=NOW + timedelta(days=expires_in_days),
        created_at=NOW - timedelta(days=created_days_ago),
    )


@pytest.mark.parametrize(
    ("lots", "amount", "expected"),
    [
        pytest.param([lot(A, 100, 30)], 40, [(A, 40)], id="one lot, part of it"),
        pytest.param([lot(A, 100, 30)], 100, [(A, 100)], id="one lot, all of it"),
        pytest.param(
            [lot(A, 100, 300), lot(B, 50, 10), lot(C, 70, 100)],
            130,
            [(B, 50), (C, 70), (A, 10)],
            id="earliest expiry first, whatever the input order",
        ),
        pytest.param(
            [lot(A, 60, 30, created_days_ago=1), lot(B, 60, 30, created_days_ago=5)],
            80,
            [(B, 60), (A, 20)],
            id="same expiry: the older lot first",
        ),
        pytest.param(
            [lot(B, 60, 30), lot(A, 60, 30)],
            80,
            [(A, 60), (B, 20)],
            id="same expiry and age: by id, so the order is stable",
        ),
        pytest.param(
            [lot(A, 500, -1), lot(B, 0, 5), lot(C, 40, 20)],
            40,
            [(C, 40)],
            id="expired and empty lots are never taken",
        ),
        pytest.param(
            [lot(A, 100, 0), lot(B, 30, 1)],
            30,
            [(B, 30)],
            id="a lot expiring exactly now is expired",
        ),
        pytest.param(
            [lot(A, 10, 1), lot(B, 20, 2), lot(C, 30, 3), lot(D, 40, 4)],
            60,
            [(A, 10), (B, 20), (C, 30)],
            id="stops as soon as the amount is covered",
        ),
    ],
)
def test_allocate_takes_earliest_expiring_live_lots_first(
    lots: list[LotView], amount: int, expected: list[tuple[uuid.UUID, int]]
) -> None:
    assert allocate(lots, amount, now=NOW) == expected


@pytest.mark.parametrize(
    ("lots", "amount"),
    [
        pytest.param([], 1, id="no lots"),
        pytest.param([lot(A, 100, 30)], 101, id="one short"),
        pytest.param([lot(A, 1_000, -1), lot(B, 10, 5)], 20, id="expired points do not count"),
        pytest.param([lot(A, 100, 30)], 0, id="zero"),
        pytest.param([lot(A, 100, 30)], -5, id="negative"),
    ],
)
def test_allocate_refuses_what_the_live_lots_cannot_cover(lots: list[LotView], amount: int) -> None:
    with pytest.raises(ValueError, match=r"positive|short"):
        allocate(lots, amount, now=NOW)


def taken(
    lot_id: uuid.UUID, amount: int, expires_in_days: float, returned: int = 0
) -> AllocationView:
    return AllocationView(
        lot_id=lot_id,
        amount=amount,
        returned=returned,
        expires_at=NOW + timedelta(days=expires_in_days),
    )


@pytest.mark.parametrize(
    ("allocations", "amount", "expected"),
    [
        pytest.param([taken(A, 50, 10)], 50, [(A, 50)], id="all of one lot back"),
        pytest.param(
            [taken(A, 50, 10), taken(B, 30, 200)],
            80,
            [(B, 30), (A, 50)],
            id="a full refund returns every lot its share",
        ),
        pytest.param(
            [taken(A, 50, 10), taken(B, 30, 200)],
            40,
            [(B, 30), (A, 10)],
            id="a partial refund fills the longest-lived lot first",
        ),
        pytest.param(
            [taken(A, 50, 10), taken(B, 30, 200, returned=30)],
            20,
            [(A, 20)],
            id="what already went back is not returned twice",
        ),
        pytest.param(
            [taken(A, 50, -3), taken(B, 30, -1)],
            35,
            [(B, 30), (A, 5)],
            id="expired lots are placed too (the caller restores them)",
        ),
        pytest.param([taken(A, 50, 10)], 0, [], id="nothing to return"),
    ],
)
def test_place_refund_returns_points_to_the_lots_they_came_from(
    allocations: list[AllocationView], amount: int, expected: list[tuple[uuid.UUID, int]]
) -> None:
    assert place_refund(allocations, amount) == expected


@pytest.mark.parametrize(
    ("allocations", "amount"),
    [
        pytest.param([], 1, id="nothing was taken"),
        pytest.param([taken(A, 50, 10)], 51, id="more than was taken"),
        pytest.param([taken(A, 50, 10, returned=40)], 11, id="more than is still out"),
    ],
)
def test_place_refund_never_returns_more_than_was_taken(
    allocations: list[AllocationView], amount: int
) -> None:
    with pytest.raises(ValueError, match="cannot return"):
        place_refund(allocations, amount)


GRACE = timedelta(days=30)


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        pytest.param(NOW + timedelta(days=90), NOW + timedelta(days=90), id="still live: kept"),
        pytest.param(NOW + timedelta(seconds=1), NOW + timedelta(seconds=1), id="just live: kept"),
        pytest.param(NOW, NOW + GRACE, id="expiring now: grace"),
        pytest.param(NOW - timedelta(days=400), NOW + GRACE, id="long expired: grace from now"),
    ],
)
def test_restored_expiry(original: datetime, expected: datetime) -> None:
    assert restored_expiry(original, now=NOW, grace=GRACE) == expected


@pytest.mark.parametrize(
    ("paid", "rate", "expected"),
    [
        pytest.param(200_000, 1.0, 2_000, id="1% of a two-night stay"),
        pytest.param(170_000, 1, 1_700, id="integer rate"),
        pytest.param(99, 1.0, 0, id="rounded down to nothing"),
        pytest.param(12_345, 1.0, 123, id="rounded down"),
        pytest.param(123_456, 2.5, 3_086, id="fractional rate"),
        pytest.param(10_000, 0.57, 57, id="no binary floating-point loss (0.57)"),
        pytest.param(5_000, 1.14, 57, id="no binary floating-point loss (1.14)"),
        pytest.param(0, 1.0, 0, id="nothing paid (all by points or coupon)"),
        pytest.param(500_000, 0, 0, id="earning switched off"),
        pytest.param(300_000, 100, 300_000, id="the whole amount"),
    ],
)
def test_earned_points(paid: int, rate: float, expected: int) -> None:
    assert earned_points(paid, rate) == expected

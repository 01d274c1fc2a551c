"""Pure lodging rules: stay validation, nightly prices, months, refund schedule."""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

MAX_NIGHTS = 30
# Nights before a weekend day (Friday and Saturday nights) take the weekend price.
WEEKEND_NIGHTS = frozenset({4, 5})


@dataclass(frozen=True, slots=True)
class RefundRule:
    days_before: int
    refund_percent: int


def stay_problem(
    check_in: date, check_out: date, *, today: date, max_nights: int = MAX_NIGHTS
) -> str | None:
    """Why a stay is invalid, or None. Check-out is exclusive: its night is neither stayed nor
    charged."""
    if check_in < today:
        return "check_in must not be in the past"
    if check_out <= check_in:
        return "check_out must be after check_in"
    if (check_out - check_in).days > max_nights:
        return f"a stay is at most {max_nights} nights"
    return None


def nights_of(check_in: date, check_out: date) -> list[date]:
    return [check_in + timedelta(days=i) for i in range((check_out - check_in).days)]


def each_night(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def nightly_price(day: date, *, price: int, weekend_price: int | None) -> int:
    if weekend_price is not None and day.weekday() in WEEKEND_NIGHTS:
        return weekend_price
    return price


def month_range(month: str) -> tuple[date, date]:
    """``YYYY-MM`` → [first day, first day of next month). Raises ValueError when malformed."""
    year_text, _, month_text = month.partition("-")
    if len(year_text) != 4 or len(month_text) != 2:
        raise ValueError("month must be YYYY-MM")
    year, number = int(year_text), int(month_text)
    if not 1 <= number <= 12 or not 2000 <= year <= 2100:
        raise ValueError("month must be YYYY-MM")
    last = calendar.monthrange(year, number)[1]
    start = date(year, number, 1)
    return start, start + timedelta(days=last)


def refund_percent(policy: Sequence[RefundRule], *, days_before: int) -> int:
    """The refund for cancelling ``days_before`` days before check-in: the tier with the largest
    ``days_before`` not exceeding it; nothing when no tier applies."""
    applicable = [rule for rule in policy if rule.days_before <= days_before]
    if not applicable:
        return 0
    return max(applicable, key=lambda rule: rule.days_before).refund_percent

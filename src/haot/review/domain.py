"""The review rules, free of storage: who may write, until when, and what counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


def window_closes(check_out: date, window_days: int) -> date:
    """The last day a stay may be reviewed (or its review edited or deleted): ``window_days``
    after check-out, that day included."""
    return check_out + timedelta(days=window_days)


def within_window(check_out: date, today: date, window_days: int) -> bool:
    return check_out <= today <= window_closes(check_out, window_days)


@dataclass(frozen=True, slots=True)
class Counted:
    """What a review adds to its lodging's rating: one review of ``rating`` when it is visible
    (neither deleted nor hidden), nothing otherwise."""

    visible: bool
    rating: int

    @property
    def count(self) -> int:
        return 1 if self.visible else 0

    @property
    def total(self) -> int:
        return self.rating if self.visible else 0


def change(before: Counted, after: Counted) -> tuple[int, int]:
    """How the lodging's count and rating sum move when a review goes from ``before`` to
    ``after``."""
    return after.count - before.count, after.total - before.total


NOT_COUNTED = Counted(visible=False, rating=0)

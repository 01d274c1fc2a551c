"""Time: aware UTC for storage, Asia/Seoul for calendar dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")


def utcnow() -> datetime:
    return datetime.now(UTC)


def seoul_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(SEOUL).date()

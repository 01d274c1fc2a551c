"""Events of the coupon context (topic ``haot.coupon``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from haot.platform.events import EventBody


class ClaimAdmitted(EventBody):
    """Redis admitted a user's claim on a coupon event (at ``accepted_at_ms``, epoch ms); the
    consumer persists it, first come first served, and issues the coupon unless the database
    says no."""

    TYPE: ClassVar[str] = "coupon.claim_accepted"
    event_id: uuid.UUID
    user_id: uuid.UUID
    claim_id: str
    accepted_at_ms: int

    def aggregate_id(self) -> str:
        return str(self.event_id)

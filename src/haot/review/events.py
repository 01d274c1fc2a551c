"""Events the review context emits (topic ``haot.review``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from haot.platform.events import EventBody


class LodgingRatingChanged(EventBody):
    """A lodging's visible reviews after a change: their count and the sum of their ratings, at
    ``version`` (which grows with every change of this lodging's reviews). A reader keeps the
    highest version it has seen, so a redelivered or late event changes nothing."""

    TYPE: ClassVar[str] = "review.lodging_rating_changed"
    lodging_id: uuid.UUID
    review_count: int
    rating_sum: int
    version: int

    def aggregate_id(self) -> str:
        return str(self.lodging_id)

"""Every table of every context, gathered for migrations and test clean-up only (contexts never
import each other's models)."""

from __future__ import annotations

from haot.coupon import models as coupon_models
from haot.identity import models as identity_models
from haot.lodging import models as lodging_models
from haot.payment import models as payment_models
from haot.platform import idempotency, inbox, outbox
from haot.platform.db import Base
from haot.point import models as point_models
from haot.reservation import models as reservation_models
from haot.review import models as review_models

# Imported for their side effect: each module registers its tables on Base.metadata.
MODULES = (
    coupon_models,
    identity_models,
    lodging_models,
    payment_models,
    point_models,
    reservation_models,
    review_models,
    idempotency,
    inbox,
    outbox,
)

metadata = Base.metadata

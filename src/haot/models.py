"""Every table of every context, gathered for migrations only (contexts never import each other's
models)."""

from __future__ import annotations

import haot.coupon.models
import haot.identity.models
import haot.lodging.models
import haot.payment.models
import haot.point.models
import haot.reservation.models
import haot.platform.idempotency
import haot.platform.inbox
import haot.platform.outbox  # noqa: F401
from haot.platform.db import Base

metadata = Base.metadata

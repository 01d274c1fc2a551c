"""Every table of every context, gathered for migrations only (contexts never import each other's
models)."""

from __future__ import annotations

from haot.platform.db import Base

metadata = Base.metadata

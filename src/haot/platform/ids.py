"""Identifiers: UUIDv7, time-ordered so indexes stay append-mostly, never guessable sequences."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    value: uuid.UUID = uuid6.uuid7()
    return uuid.UUID(bytes=value.bytes)


def parse_id(raw: str) -> uuid.UUID | None:
    """The UUID in ``raw``, or None when it is not one (callers answer 404, never 500)."""
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        return None

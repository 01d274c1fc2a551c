"""OpenAPI documentation of problem+json answers, so clients see every error a route can give."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


_DESCRIPTIONS = {
    401: "Missing, invalid, expired or revoked credentials",
    403: "Authenticated but lacking the role",
    404: "Not found (also for another user's resource)",
    409: "Conflict with current state",
    422: "Invalid input",
    429: "Rate limited (see Retry-After)",
    503: "Temporarily unavailable (see Retry-After)",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }

"""One error base with a stable machine ``code``; mapped to RFC 9457 problem+json in ``problems``.

Contexts subclass these (``class SoldOut(Conflict): code = "sold_out"``) and never raise
framework exceptions.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HaotError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class InvalidInput(HaotError):
    status = 422
    code = "validation_error"
    title = "Invalid input"


class Unauthorized(HaotError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class InvalidToken(Unauthorized):
    code = "invalid_token"
    title = "Invalid or expired token"


class Forbidden(HaotError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(HaotError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(HaotError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(HaotError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class RateLimited(HaotError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(HaotError):
    status = 503
    code = "service_unavailable"
    title = "Service temporarily unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class IdempotencyKeyReused(HaotError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency-Key was used with a different request"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed"

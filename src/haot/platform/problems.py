"""RFC 9457 problem+json for every failure, mapped once for the whole app."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, time
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from haot.platform.errors import HaotError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Invalid input"),
    429: ("rate_limited", "Too many requests"),
}


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://haot.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return Response(
        content=orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


def haot_error_response(exc: HaotError, instance: str | None) -> Response:
    """The problem answer of a domain error (its status, stable code, title and detail)."""
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=instance,
        headers=exc.headers,
        extra=exc.extra,
    )


def internal_error_response(instance: str | None = None) -> Response:
    """The answer to an unexpected exception: nothing from the exception itself goes out."""
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="An unexpected error occurred; it has been logged.",
        instance=instance,
    )


# The limits of a refused value that a client needs to word the refusal itself (in its own
# language): pydantic's ``ctx`` keys, never its ``input`` (it may be a password) nor its ``error``.
_LIMITS = ("min_length", "max_length", "ge", "gt", "le", "lt", "pattern")


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        entry: dict[str, Any] = {
            "loc": [str(part) for part in error.get("loc", ())],
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        if ctx := _limits(error.get("ctx")):
            entry["ctx"] = ctx
        errors.append(entry)
    return errors


def _limits(ctx: object) -> dict[str, int | float | str]:
    """The JSON-safe limits in a pydantic error's context: plain numbers and strings, dates and
    times as ISO 8601 (``birth_date`` >= 1900-01-01); anything else is left out."""
    if not isinstance(ctx, dict):
        return {}
    limits: dict[str, int | float | str] = {}
    for key in _LIMITS:
        value = ctx.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | str) or (isinstance(value, float) and math.isfinite(value)):
            limits[key] = value
        elif isinstance(value, date | time):  # datetime is a date
            limits[key] = value.isoformat()
    return limits


def is_data_error(exc: DBAPIError) -> bool:
    """The database refused a *value* (SQLSTATE class 22: a NUL character in text, a number out
    of range, an invalid encoding): bad input that the schemas let through, not a server fault."""
    if isinstance(exc, DataError):
        return True
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return isinstance(code, str) and code.startswith("22")


# A browser asking for a page gets an HTML error page from this (None: the problem+json answer).
PageErrors = Callable[[Request, int], Response | None]


def install_problem_handlers(app: FastAPI, *, pages: PageErrors | None = None) -> None:
    def page_error(request: Request, status: int) -> Response | None:
        return pages(request, status) if pages is not None else None

    async def on_haot_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HaotError)
        if (page := page_error(request, exc.status)) is not None:
            return page
        return haot_error_response(exc, request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['message']}" for e in errors[:5])
        return problem_response(
            status=422,
            code="validation_error",
            title="Invalid input",
            detail=detail or "Invalid input",
            instance=request.url.path,
            extra={"errors": errors},
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if (page := page_error(request, exc.status_code)) is not None:
            return page
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            status=exc.status_code,
            code=code,
            title=title,
            detail=detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    async def on_database_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DBAPIError)
        if not is_data_error(exc):
            raise exc
        # The message carries the statement's parameters (hashes, personal data): type only.
        log.warning(
            "database_refused_value",
            path=request.url.path,
            error=type(exc.orig).__name__,
            sqlstate=getattr(exc.orig, "sqlstate", None),
        )
        return problem_response(
            status=422,
            code="validation_error",
            title="Invalid input",
            detail="A value in the request cannot be stored (for example a NUL character).",
            instance=request.url.path,
        )

    async def on_dependency_down(request: Request, exc: Exception) -> Response:
        # Redis or the database cannot be reached: the request is fine, the service is not.
        log.error("dependency_unavailable", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            status=503,
            code="service_unavailable",
            title="Service temporarily unavailable",
            detail="A backing service is unreachable; retry shortly.",
            instance=request.url.path,
            headers={"Retry-After": "2"},
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", path=request.url.path)
        if (page := page_error(request, 500)) is not None:
            return page
        return internal_error_response(request.url.path)

    app.add_exception_handler(HaotError, on_haot_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(RedisConnectionError, on_dependency_down)
    app.add_exception_handler(RedisTimeoutError, on_dependency_down)
    app.add_exception_handler(Exception, on_unexpected)

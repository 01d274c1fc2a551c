"""A request body limit on every route, answered 413 problem+json before the body is read when the
client declares its length, and as soon as the count passes the limit when it streams. Routes that
verify a signature over the raw body (the PortOne webhook) have a smaller limit of their own, so an
unauthenticated sender cannot make the server buffer a large body before the check."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haot.platform.errors import PayloadTooLarge
from haot.platform.problems import haot_error_response


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, per_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self._max_bytes = max_bytes
        self._per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._per_path.get(scope["path"], self._max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            # Past the limit the client gets its 413 at once, and the app sees a client that went
            # away (frameworks turn an exception raised here into their own 400).
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(limit, scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the app's own answer to the "disconnect": the client has the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


def _detail(limit: int) -> str:
    return f"The request body exceeds {limit} bytes"


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = haot_error_response(PayloadTooLarge(_detail(limit)), scope["path"])
    await response(scope, receive, send)

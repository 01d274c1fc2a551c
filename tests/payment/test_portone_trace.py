"""Calls to PortOne carry the trace of the request or event that makes them (W3C traceparent),
through the adapter's own client and through a client handed to it."""

from __future__ import annotations

import httpx
import orjson

from haot.payment.portone import PortOneGateway
from haot.platform.observability import trace_bound, trace_id_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class PortOne:
    """Answers every call "no such payment" and keeps the headers it was sent."""

    def __init__(self) -> None:
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        body = {"type": "PAYMENT_NOT_FOUND", "message": "no such payment"}
        return httpx.Response(404, content=orjson.dumps(body))


def gateway(**client: httpx.AsyncBaseTransport | httpx.AsyncClient) -> PortOneGateway:
    return PortOneGateway(
        api_secret="test-portone-api-secret",
        base_url="https://portone.test",
        webhook_secret=WEBHOOK_SECRET,
        **client,  # type: ignore[arg-type]
    )


async def test_portone_calls_carry_the_trace_being_served() -> None:
    portone = PortOne()
    adapter = gateway(transport=httpx.MockTransport(portone))
    with trace_bound(TRACEPARENT):
        assert await adapter.get_payment("pay-traced") is None
    assert await adapter.get_payment("pay-untraced") is None
    await adapter.aclose()

    traced, untraced = portone.headers
    assert trace_id_of(traced["traceparent"]) == TRACE_ID
    # This process's span, not the caller's.
    assert traced["traceparent"] != TRACEPARENT
    assert "traceparent" not in untraced
    assert traced["authorization"].startswith("PortOne ")  # the SDK's own headers stay


async def test_a_client_handed_over_sends_the_trace_too() -> None:
    portone = PortOne()
    async with httpx.AsyncClient(transport=httpx.MockTransport(portone)) as client:
        adapter = gateway(http_client=client)
        with trace_bound(TRACEPARENT):
            assert await adapter.get_payment("pay-traced") is None
    (headers,) = portone.headers
    assert trace_id_of(headers["traceparent"]) == TRACE_ID

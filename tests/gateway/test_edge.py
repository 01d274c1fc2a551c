"""The gateway's own duties: request ids, forwarded headers, limits, streams, its own answers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from haot.gateway import DEFAULT_MAX_BODY_BYTES, DEFAULT_WEBHOOK_MAX_BODY_BYTES
from tests.gateway.stubs import (
    STREAM_PATH,
    Gateway,
    Stub,
    addresses,
    raw_request,
    running_gateway,
)
from tests.support.services import free_port

NGINX_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"https://haot.dev/problems/{code.replace('_', '-')}"
    assert problem["title"]
    assert problem["detail"]
    assert "upstream" not in problem  # the gateway answered, no service did
    assert NGINX_REQUEST_ID.fullmatch(response.headers["x-request-id"])


# ---- Request id, forwarded headers, the access log ------------------------------------------


async def test_a_request_id_is_given_when_the_client_sends_none(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/points")
    request_id = response.headers["x-request-id"]
    assert NGINX_REQUEST_ID.fullmatch(request_id)
    # The service got it, and the client gets one header: the gateway's (the service's is hidden).
    assert response.json()["request_id"] == request_id
    assert response.headers.get_list("x-request-id") == [request_id]
    other = await client.get("/api/v1/points")
    assert other.headers["x-request-id"] != request_id


async def test_the_clients_request_id_is_kept_when_the_app_would_keep_it(
    client: httpx.AsyncClient,
) -> None:
    given = "client-chose-this:1/2"
    response = await client.get("/api/v1/lodgings", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    assert response.json()["request_id"] == given
    # What the app would replace (longer than 128 characters, or a space), the gateway replaces.
    for unusable in ("x" * 129, "has space"):
        response = await client.get("/api/v1/lodgings", headers={"X-Request-ID": unusable})
        assert NGINX_REQUEST_ID.fullmatch(response.headers["x-request-id"])
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_the_service_learns_the_client_address_scheme_and_host(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    seen = (await client.get("/api/v1/users/me")).json()
    assert seen["forwarded_for"] == "127.0.0.1"
    assert seen["forwarded_proto"] == "http"
    assert seen["host"] == f"127.0.0.1:{gateway.port}"
    # The pages process names its visitor; the gateway appends the peer it saw.
    seen = (await client.get("/api/v1/users/me", headers={"X-Forwarded-For": "203.0.113.9"})).json()
    assert seen["forwarded_for"] == "203.0.113.9, 127.0.0.1"


async def test_the_access_log_is_json_lines_with_the_request_id(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    await client.get("/api/v1/coupons?status=ISSUED", headers={"X-Request-ID": "log-me-1"})
    await client.get("/internal/v1/point/holds", headers={"X-Request-ID": "log-me-2"})
    entries = {entry["request_id"]: entry for entry in gateway.access_log()}
    routed, refused = entries["log-me-1"], entries["log-me-2"]
    assert routed["status"] == 200
    assert routed["upstream"] == "coupon"
    assert routed["upstream_addr"].startswith("127.0.0.1:")
    assert routed["upstream_status"] == "200"
    assert isinstance(routed["request_time"], float | int)
    assert routed["path"] == "/api/v1/coupons"  # the query stays out of the log
    assert routed["method"] == "GET"
    assert (refused["status"], refused["upstream"], refused["upstream_addr"]) == (404, "", "")


# ---- Paths the gateway answers itself -------------------------------------------------------


async def test_health_is_the_gateways_own_answer(
    client: httpx.AsyncClient, stubs: dict[str, Stub]
) -> None:
    before = sum(len(stub.received) for stub in stubs.values())
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response.headers["content-type"] == "application/json"
    assert sum(len(stub.received) for stub in stubs.values()) == before


@pytest.mark.parametrize(
    "target",
    [
        "/internal/v1/point/holds",
        "/internal/",
        "/internal/v1/lodging/holds?x=1",
        # However the path is spelt: nginx routes the path it normalised.
        "/api/v1/../../internal/v1/point/holds",
        "/api/v1/%2e%2e/%2e%2e/internal/v1/point/holds",
        "//internal/v1/point/holds",
        "/internal%2fv1/point/holds",
        "/%69nternal/v1/point/holds",
    ],
)
async def test_internal_routes_are_never_reachable(
    gateway: Gateway, stubs: dict[str, Stub], target: str
) -> None:
    before = sum(len(stub.received) for stub in stubs.values())
    for method in ("GET", "POST"):
        status, body = await raw_request(gateway.port, target, method)
        assert status == 404, (target, body)
        assert b'"code":"not_found"' in body
    assert sum(len(stub.received) for stub in stubs.values()) == before


async def test_metrics_are_not_exposed(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/metrics?name[]=haot_http_requests_total"):
        assert_problem(await client.get(path), 404, "not_found")


# ---- Body size ------------------------------------------------------------------------------


async def test_a_body_over_the_apps_limit_is_refused_before_any_service_reads_it(
    client: httpx.AsyncClient, stubs: dict[str, Stub]
) -> None:
    seen = len(stubs["reservation"].received)
    too_large = b"x" * (DEFAULT_MAX_BODY_BYTES + 1)
    response = await client.post("/api/v1/reservations", content=too_large)
    assert_problem(response, 413, "payload_too_large")
    assert len(stubs["reservation"].received) == seen
    # Without a declared length (chunked), refused as soon as the count passes the limit.

    async def streamed() -> AsyncIterator[bytes]:
        for _ in range(DEFAULT_MAX_BODY_BYTES // 65536 + 1):
            yield b"x" * 65536

    response = await client.post("/api/v1/reservations", content=streamed())
    assert_problem(response, 413, "payload_too_large")
    assert len(stubs["reservation"].received) == seen
    # At the limit it passes, whole (kept in memory: nginx's workers write no temporary file).
    fits = b"x" * DEFAULT_MAX_BODY_BYTES
    answer = (await client.post("/api/v1/reservations", content=fits)).json()
    assert (answer["upstream"], answer["body_bytes"]) == ("reservation", len(fits))


async def test_the_webhook_has_its_smaller_limit(client: httpx.AsyncClient) -> None:
    over = b"x" * (DEFAULT_WEBHOOK_MAX_BODY_BYTES + 1)
    assert_problem(
        await client.post("/api/v1/webhooks/portone", content=over), 413, "payload_too_large"
    )
    fits = b"x" * DEFAULT_WEBHOOK_MAX_BODY_BYTES
    answer = (await client.post("/api/v1/webhooks/portone", content=fits)).json()
    assert (answer["upstream"], answer["body_bytes"]) == ("payment", len(fits))
    # The same body is fine elsewhere.
    answer = (await client.post("/api/v1/payments/p-1/complete", content=over)).json()
    assert (answer["upstream"], answer["body_bytes"]) == ("payment", len(over))


# ---- Server-sent events ---------------------------------------------------------------------


async def test_the_event_stream_is_passed_on_as_it_comes(
    client: httpx.AsyncClient, stubs: dict[str, Stub]
) -> None:
    coupon = stubs["coupon"]
    coupon.hold_stream = True
    try:
        async with client.stream("GET", STREAM_PATH) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            chunks = response.aiter_text()
            # The first event reaches the client while the service still holds the second.
            first = await asyncio.wait_for(anext(chunks), timeout=3)
            assert '"upstream": "coupon"' in first
            assert coupon.first_event_sent.is_set()
            assert not coupon.release_second_event.is_set()
            coupon.release_second_event.set()
            rest = "".join([chunk async for chunk in chunks])
            assert "data: done" in rest
    finally:
        coupon.hold_stream = False
        coupon.release_second_event.set()


# ---- Rate limit per client address ----------------------------------------------------------


@pytest.fixture(scope="module")
async def limited(stubs: dict[str, Stub]) -> AsyncIterator[Gateway]:
    """One request a second, two more at once; every test uses addresses of its own."""
    async with running_gateway(addresses(stubs), rate_per_second=1, burst=2) as running:
        yield running


async def _statuses(client: httpx.AsyncClient, path: str, n: int, visitor: str) -> list[int]:
    headers = {"X-Forwarded-For": visitor}
    return [(await client.get(path, headers=headers)).status_code for _ in range(n)]


async def test_a_client_beyond_its_rate_gets_429_problems(limited: Gateway) -> None:
    async with httpx.AsyncClient(base_url=limited.url) as client:
        statuses = await _statuses(client, "/api/v1/lodgings", 6, "198.51.100.1")
        assert statuses[:3] == [200, 200, 200], statuses
        # (One more may pass if the machine stalls a whole second between two requests.)
        assert statuses[3:].count(429) >= 2, statuses
        refused = await client.get("/api/v1/points", headers={"X-Forwarded-For": "198.51.100.1"})
        assert_problem(refused, 429, "rate_limited")
        assert refused.headers["retry-after"] == "1"
        # Another visitor named by the pages process (a trusted address) has a budget of its own.
        assert await _statuses(client, "/api/v1/lodgings", 3, "198.51.100.2") == [200] * 3
        # Static files and the gateway's health are not counted.
        for path in ("/static/app.css", "/healthz"):
            assert await _statuses(client, path, 5, "198.51.100.1") == [200] * 5, path


async def test_an_untrusted_client_cannot_choose_its_address(limited: Gateway) -> None:
    """From an address that is not trusted, X-Forwarded-For changes nothing: the limit counts the
    peer (127.0.0.2 here, a loopback address the gateway does not trust)."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=limited.url, transport=transport) as client:
        statuses = [
            (
                await client.get("/api/v1/points", headers={"X-Forwarded-For": f"192.0.2.{i}"})
            ).status_code
            for i in range(6)
        ]
        assert statuses[:3] == [200, 200, 200], statuses
        assert statuses[3:].count(429) >= 2, statuses
        await asyncio.sleep(1.1)  # a token back in the bucket
        seen = (await client.get("/api/v1/points")).json()
        assert seen["forwarded_for"] == "127.0.0.2"


# ---- Services down or slow ------------------------------------------------------------------


@pytest.fixture(scope="module")
async def faulty(stubs: dict[str, Stub]) -> AsyncIterator[Gateway]:
    """Point's service is not there (nothing listens on its port); the others must answer within
    a second."""
    upstreams = addresses(stubs) | {"point": f"127.0.0.1:{free_port()}"}
    async with running_gateway(upstreams, read_timeout_seconds=1) as running:
        yield running


async def test_a_service_that_is_down_is_a_502_problem(faulty: Gateway) -> None:
    async with httpx.AsyncClient(base_url=faulty.url) as client:
        assert_problem(await client.get("/api/v1/points"), 502, "bad_gateway")
        assert_problem(
            await client.post("/api/v1/admin/jobs/expire-points/run"), 502, "bad_gateway"
        )
        # The rest of the product is unaffected.
        assert (await client.get("/api/v1/lodgings")).json()["upstream"] == "lodging"


async def test_a_service_too_slow_is_a_504_problem(faulty: Gateway) -> None:
    async with httpx.AsyncClient(base_url=faulty.url, timeout=10) as client:
        assert_problem(await client.get("/api/v1/lodgings?sleep=3"), 504, "gateway_timeout")
        assert (await client.get("/api/v1/lodgings?sleep=0.1")).status_code == 200

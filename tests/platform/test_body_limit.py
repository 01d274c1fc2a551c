"""Every route has a request body limit, answered 413 problem+json: declared lengths before any
byte is read, streamed bodies as soon as they pass it, and the webhook's smaller limit before its
signature is checked (issue 11, item 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

MIB = 1024 * 1024


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize(
    "path",
    ["/api/v1/auth/login", "/api/v1/reservations", "/fake-portone/checkout/pay_x/approve"],
)
async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    app_client: httpx.AsyncClient, path: str
) -> None:
    assert_too_large(
        await app_client.post(path, content=b"{" + b" " * (2 * MIB) + b"}", headers={})
    )


async def test_a_streamed_body_over_the_limit_is_refused(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/api/v1/auth/login",
        content=chunks(2 * MIB),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_too_large(response)


async def test_the_webhook_refuses_a_large_body_before_its_signature(
    app_client: httpx.AsyncClient,
) -> None:
    unsigned = b'{"type": "Transaction.Paid", "pad": "' + b"x" * (100 * 1024) + b'"}'
    assert_too_large(await app_client.post("/api/v1/webhooks/portone", content=unsigned))
    # A small unsigned one is judged by its signature, as before.
    small = await app_client.post("/api/v1/webhooks/portone", content=b'{"type": "x"}')
    assert small.status_code == 400
    assert small.json()["code"] == "invalid_webhook_signature"


async def test_bodies_within_the_limit_go_through(app_client: httpx.AsyncClient) -> None:
    answer = await app_client.post(
        "/api/v1/auth/login", json={"email": "nobody@haot.example", "password": "x" * 500_000}
    )
    assert answer.status_code in (401, 422), answer.text

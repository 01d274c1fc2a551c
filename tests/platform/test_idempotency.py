"""Idempotency-Key with Stripe's semantics, through the real middleware, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import jwt
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from starlette.types import Message, Scope

from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.idempotency import IdempotencyRecord
from tests.platform.conftest import Probe, assert_problem, bearer

URL = "/probe/items"


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


async def stored_keys(app: FastAPI) -> int:
    async with app.state.platform.databases.sessions_for("platform")() as session:
        count = await session.scalar(select(func.count()).select_from(IdempotencyRecord))
    return int(count or 0)


async def test_same_key_same_body_replays_without_running_again(
    probe_client: httpx.AsyncClient, probe: Probe
) -> None:
    headers = key()
    first = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    second = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["content-type"] == first.headers["content-type"]
    assert "x-not-stored" not in second.headers  # only a safe list of headers is replayed
    assert probe.calls == 1

    # Without a key (or with another key) the request simply runs again.
    third = await probe_client.post(URL, json={"name": "a"})
    fourth = await probe_client.post(URL, json={"name": "a"}, headers=key())
    assert third.status_code == fourth.status_code == 201
    assert len({first.json()["id"], third.json()["id"], fourth.json()["id"]}) == 3
    assert probe.calls == 3


async def test_same_key_other_body_is_422(probe_client: httpx.AsyncClient, probe: Probe) -> None:
    headers = key()
    assert (await probe_client.post(URL, json={"name": "a"}, headers=headers)).status_code == 201
    other = await probe_client.post(URL, json={"name": "b"}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    # Same body on another path is another request too.
    other_path = await probe_client.post("/probe/me/items", json={"name": "a"}, headers=headers)
    assert other_path.status_code in (401, 422)
    assert probe.calls == 1
    # The original answer is still there.
    again = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"


async def test_concurrent_requests_with_one_key_run_once(
    probe_client: httpx.AsyncClient, probe: Probe
) -> None:
    probe.delay = 0.3
    headers = key()
    responses = await asyncio.gather(
        *(probe_client.post(URL, json={"name": "a"}, headers=headers) for _ in range(10))
    )
    assert probe.calls == 1
    created = [r for r in responses if r.status_code == 201]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_flight) == 10, [r.status_code for r in responses]
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if r.headers.get("idempotent-replayed") != "true") == 1
    assert in_flight, "the handler sleeps: some requests must have met the in-flight key"
    for response in in_flight:
        assert_problem(response, 409, "idempotency_key_in_flight")
        assert int(response.headers["retry-after"]) >= 1


async def test_keys_are_scoped_per_caller(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    headers = key()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    first = await probe_client.post(
        "/probe/me/items", json={"name": "a"}, headers=headers | bearer(probe_app, user_id=alice)
    )
    second = await probe_client.post(
        "/probe/me/items", json={"name": "a"}, headers=headers | bearer(probe_app, user_id=bob)
    )
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert probe.seen_users == [str(alice), str(bob)]
    # Alice's retry (with a fresh token) replays her own answer.
    again = await probe_client.post(
        "/probe/me/items", json={"name": "a"}, headers=headers | bearer(probe_app, user_id=alice)
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert probe.calls == 2


async def test_forged_token_cannot_replay_another_callers_answer(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    """The middleware files keys under the token subject; a token with the victim's subject but
    no valid signature must not read the victim's stored answer."""
    victim = uuid.uuid4()
    headers = key()
    stored = await probe_client.post(
        "/probe/me/items", json={"name": "a"}, headers=headers | bearer(probe_app, user_id=victim)
    )
    assert stored.status_code == 201
    forged = jwt.encode({"sub": str(victim), "role": "USER"}, "x" * 32, algorithm="HS256")
    attempt = await probe_client.post(
        "/probe/me/items",
        json={"name": "a"},
        headers=headers | {"Authorization": f"Bearer {forged}"},
    )
    assert_problem(attempt, 401, "invalid_token")
    assert stored.json()["id"] not in attempt.text
    assert probe.calls == 1


async def test_server_error_does_not_store_the_key(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    headers = key()
    probe.fail_next = ["crash", "unavailable"]
    crashed = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert_problem(crashed, 500, "internal_error")
    unavailable = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert_problem(unavailable, 503, "service_unavailable")
    assert unavailable.headers["retry-after"] == "3"
    assert await stored_keys(probe_app) == 0
    retried = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert probe.calls == 3


async def test_client_error_is_stored_and_replayed(
    probe_client: httpx.AsyncClient, probe: Probe
) -> None:
    headers = key()
    probe.fail_next = ["conflict"]
    first = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    body = assert_problem(first, 409, "conflict")
    second = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert second.status_code == 409
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json() == body
    assert probe.calls == 1


async def test_retryable_client_errors_are_not_stored(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    """429 says "try again later" and 401 "try again with credentials": replaying them for a day
    would make the key unusable (Stripe stores no answer when the endpoint did not run)."""
    headers = key()
    probe.fail_next = ["rate_limited"]
    limited = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert_problem(limited, 429, "rate_limited")
    assert (await probe_client.post(URL, json={"name": "a"}, headers=headers)).status_code == 201
    assert probe.calls == 2

    other = key()
    anonymous = await probe_client.post("/probe/me/items", json={"name": "a"}, headers=other)
    assert_problem(anonymous, 401, "unauthorized")
    user = uuid.uuid4()
    expired = probe_app.state.platform.signer.issue(
        user, Role.USER, now=utcnow() - timedelta(hours=1)
    )
    stale = await probe_client.post(
        "/probe/me/items",
        json={"name": "a"},
        headers=other | {"Authorization": f"Bearer {expired.token}"},
    )
    assert_problem(stale, 401, "invalid_token")
    fresh = await probe_client.post(
        "/probe/me/items", json={"name": "a"}, headers=other | bearer(probe_app, user_id=user)
    )
    assert fresh.status_code == 201, fresh.text
    assert "idempotent-replayed" not in fresh.headers
    assert probe.calls == 3


async def test_no_store_answers_are_not_kept(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    """A token response says ``Cache-Control: no-store``: keeping it would put a live credential
    in the idempotency table in plain text. The key is released instead."""
    headers = key()
    first = await probe_client.post("/probe/tokens", json={}, headers=headers)
    second = await probe_client.post("/probe/tokens", json={}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in second.headers
    assert first.json()["token"] != second.json()["token"]
    assert probe.calls == 2
    assert await stored_keys(probe_app) == 0


INVALID_KEYS = [b"", b"x" * 256, "ключ".encode(), b"has space", b"tab\there", b"caf\xe9"]


async def test_invalid_keys_are_422(probe_client: httpx.AsyncClient, probe: Probe) -> None:
    for raw in INVALID_KEYS:
        response = await probe_client.post(
            URL, json={"name": "a"}, headers=[(b"Idempotency-Key", raw)]
        )
        assert_problem(response, 422, "invalid_idempotency_key")
    assert probe.calls == 0
    # Reads are never keyed: a GET with a junk key is simply served.
    assert (await probe_client.get("/healthz", headers={"Idempotency-Key": ""})).status_code == 200


async def test_longest_valid_key_is_accepted(probe_client: httpx.AsyncClient, probe: Probe) -> None:
    headers = {"Idempotency-Key": "k" * 255}
    assert (await probe_client.post(URL, json={"name": "a"}, headers=headers)).status_code == 201
    replay = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert probe.calls == 1


async def test_expired_lease_is_taken_over_and_the_old_holder_cannot_overwrite(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    headers = key()
    gate = probe.gate = asyncio.Event()
    stuck = asyncio.create_task(probe_client.post(URL, json={"name": "a"}, headers=headers))
    try:
        await asyncio.wait_for(probe.started.wait(), 5)
        busy = await probe_client.post(URL, json={"name": "a"}, headers=headers)
        assert_problem(busy, 409, "idempotency_key_in_flight")

        # The holder's lease runs out (its process is presumed dead): a retry takes over.
        sessions = probe_app.state.platform.databases.sessions_for("platform")
        async with sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(locked_until=utcnow() - timedelta(seconds=1))
            )
        probe.gate = None
        taken = await probe_client.post(URL, json={"name": "a"}, headers=headers)
        assert taken.status_code == 201, taken.text
        assert "idempotent-replayed" not in taken.headers
        assert probe.calls == 2
    finally:
        gate.set()
        late = await asyncio.wait_for(stuck, 5)

    # The old holder finished late: the stored answer stays that of the request that took over.
    assert late.status_code == 201
    replay = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == taken.json()


async def test_client_gone_before_its_body_arrived_does_not_burn_the_key(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    """A half-sent body must not run the handler (which would store an answer to a request the
    client never finished, and turn its honest retry into 422 idempotency_key_reused)."""
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"name": "a', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"idempotency-key", b"half")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await probe_app(scope, receive, send)
    assert probe.calls == 0
    assert not any(m["type"] == "http.response.start" and m["status"] < 500 for m in sent)

    retry = await probe_client.post(URL, json={"name": "a"}, headers={"Idempotency-Key": "half"})
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert probe.calls == 1


async def test_oversized_body_is_413_problem(probe_client: httpx.AsyncClient, probe: Probe) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await probe_client.post(
        URL, content=big, headers=key() | {"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    assert probe.calls == 0


async def test_replays_count_under_their_route_template(
    probe_client: httpx.AsyncClient, probe: Probe
) -> None:
    labels = {"method": "POST", "route": "/probe/items", "status": "201"}

    def sample() -> float:
        return REGISTRY.get_sample_value("haot_http_requests_total", labels) or 0.0

    before = sample()
    headers = key()
    for _ in range(3):
        assert (
            await probe_client.post(URL, json={"name": "a"}, headers=headers)
        ).status_code == 201
    assert sample() - before == 3
    assert probe.calls == 1


async def test_expired_keys_run_again_and_are_purged(
    probe_client: httpx.AsyncClient, probe: Probe, probe_app: FastAPI
) -> None:
    headers = key()
    first = await probe_client.post(URL, json={"name": "a"}, headers=headers)
    assert first.status_code == 201
    sessions = probe_app.state.platform.databases.sessions_for("platform")
    async with sessions() as session, session.begin():
        await session.execute(
            update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # Past its lifetime the key is free again: the request runs (and stores a new answer).
    second = await probe_client.post(URL, json={"name": "b"}, headers=headers)
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert probe.calls == 2

    stale = key()
    assert (await probe_client.post(URL, json={"name": "c"}, headers=stale)).status_code == 201
    async with sessions() as session, session.begin():
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == stale["Idempotency-Key"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    jobs = probe_app.state.platform.jobs
    assert await jobs.run("purge-idempotency", dry_run=True) == {"would_purge": 1}
    assert await stored_keys(probe_app) == 2
    assert await jobs.run("purge-idempotency") == {"purged": 1}
    assert await stored_keys(probe_app) == 1  # the live key stays
    assert await jobs.run("purge-idempotency") == {"purged": 0}

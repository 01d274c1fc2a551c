"""The rules of claiming an event coupon, over HTTP: the window, stock, one per user, the rate
limit, unlimited events, the claim status endpoint and the SSE stream of claim results."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.coupon.conftest import (
    Api,
    db_view,
    http_drop,
    issuance_of,
    problem,
    redis_view,
    serve,
    settle,
)
from tests.support.server import real_server

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres"]),
]


def claims_url(event_id: str) -> str:
    return f"/api/v1/coupon-events/{event_id}/claims"


async def claim(api: Api, event_id: str, headers: dict[str, str]) -> httpx.Response:
    return await api.http.post(claims_url(event_id), headers=headers)


async def until_settled(api: Api, event_id: str) -> None:
    await settle(api.platform, uuid.UUID(event_id), [])


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with serve(settings) as served:
        yield served


async def test_claims_outside_the_window_or_after_a_manual_close_are_refused(api: Api) -> None:
    upcoming = await http_drop(api, quantity=5, starts_in=timedelta(hours=1))
    answer = await claim(api, upcoming, api.auth())
    assert problem(answer) == (409, "event_not_open")

    ending = await http_drop(
        api, quantity=5, starts_in=timedelta(seconds=-5), lasts=timedelta(seconds=6)
    )
    guest = api.auth()
    assert (await claim(api, ending, guest)).status_code == 202
    await asyncio.sleep(1.3)  # past ends_at
    assert problem(await claim(api, ending, api.auth())) == (409, "event_not_open")

    open_one = await http_drop(api, quantity=5)
    assert (await claim(api, open_one, api.auth())).status_code == 202
    closed = await api.http.patch(
        f"/api/v1/admin/coupon-events/{open_one}", headers=api.admin, json={"status": "CLOSED"}
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["closed_reason"]) == ("CLOSED", "MANUAL")
    assert problem(await claim(api, open_one, api.auth())) == (409, "event_not_open")
    live = await api.http.get("/api/v1/coupon-events")
    assert open_one not in {e["id"] for e in live.json()["items"]}
    assert upcoming in {e["id"] for e in live.json()["items"]}
    # The one claim accepted before the close is still honoured.
    await until_settled(api, open_one)
    assert (await db_view(api.platform, uuid.UUID(open_one))).rows == 1


async def test_unknown_event_is_404(api: Api) -> None:
    assert problem(await claim(api, "not-an-id", api.auth())) == (404, "event_not_found")
    answer = await claim(api, str(uuid.uuid4()), api.auth())
    assert problem(answer) == (404, "event_not_found")


async def test_sold_out_also_after_the_event_closed_by_exhaustion(api: Api) -> None:
    event_id = await http_drop(api, quantity=2)
    winners = [api.auth(), api.auth()]
    for headers in winners:
        assert (await claim(api, event_id, headers)).status_code == 202
    assert problem(await claim(api, event_id, api.auth())) == (409, "coupon_sold_out")
    assert problem(await claim(api, event_id, winners[0])) == (409, "coupon_already_claimed")

    await until_settled(api, event_id)
    event = (await api.http.get(f"/api/v1/coupon-events/{event_id}")).json()
    assert (event["status"], event["closed_reason"], event["remaining"]) == (
        "CLOSED",
        "EXHAUSTED",
        0,
    )
    await api.platform.jobs.run("reconcile-coupons")  # the sweep forgets the closed event
    assert problem(await claim(api, event_id, api.auth())) == (409, "coupon_sold_out")

    # Redis loses everything: once rebuilt from the database it is still sold out, not "closed".
    client = aioredis.Redis.from_url(api.platform.settings.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    for _ in range(100):
        answer = await claim(api, event_id, api.auth())
        if answer.status_code != 503:
            break
        await asyncio.sleep(0.05)
    assert problem(answer) == (409, "coupon_sold_out")
    assert problem(await claim(api, event_id, winners[1])) == (409, "coupon_already_claimed")


async def test_duplicate_claim_is_409_before_and_after_it_is_persisted(api: Api) -> None:
    event_id = await http_drop(api, quantity=10)
    guest = api.auth()
    first = await claim(api, event_id, guest)
    assert first.status_code == 202
    again = await claim(api, event_id, guest)
    assert problem(again) == (409, "coupon_already_claimed")
    await until_settled(api, event_id)
    assert problem(await claim(api, event_id, guest)) == (409, "coupon_already_claimed")
    mine = await api.http.get("/api/v1/coupons", headers=guest)
    assert mine.json()["total"] == 1


async def test_rate_limit_per_user_and_event(settings: Settings) -> None:
    limited = make_settings(settings.database_url, coupon_claims_per_second=2)
    async with serve(limited) as api:
        event_id = await http_drop(api, quantity=10)
        other_event = await http_drop(api, quantity=10)
        user = uuid.uuid4()
        guest = api.auth(Role.USER, user)
        answers = [await claim(api, event_id, guest) for _ in range(3)]
        assert answers[0].status_code == 202
        assert problem(answers[1]) == (409, "coupon_already_claimed")
        assert problem(answers[2]) == (429, "rate_limited")
        assert 1 <= int(answers[2].headers["Retry-After"]) <= 1
        # The limit is kept per (event, user): the same user on another event is not limited,
        # nor is another user on this event.
        assert (await claim(api, other_event, guest)).status_code == 202
        assert (await claim(api, event_id, api.auth())).status_code == 202
        await asyncio.sleep(1.05)
        assert problem(await claim(api, event_id, guest)) == (409, "coupon_already_claimed")


async def test_unlimited_event_gives_one_coupon_to_every_user(api: Api) -> None:
    event_id = await http_drop(api, quantity=None)
    users = [api.auth() for _ in range(60)]
    answers = await asyncio.gather(*(claim(api, event_id, headers) for headers in users))
    assert [a.status_code for a in answers] == [202] * 60
    again = await asyncio.gather(*(claim(api, event_id, headers) for headers in users[:10]))
    assert {problem(a) for a in again} == {(409, "coupon_already_claimed")}
    await settle(api.platform, uuid.UUID(event_id), [a.json()["claim_id"] for a in answers])
    event = (await api.http.get(f"/api/v1/coupon-events/{event_id}")).json()
    assert (event["quantity"], event["remaining"], event["issued"], event["status"]) == (
        None,
        None,
        60,
        "OPEN",
    )
    view = await db_view(api.platform, uuid.UUID(event_id))
    assert view.rows == 60
    assert len(view.coupons) == 60


async def test_claim_status_goes_from_accepted_to_issued_and_is_private(
    settings: Settings,
) -> None:
    async with serve(settings, run_workers=False) as api:  # the pump is driven by hand
        event_id = await http_drop(api, quantity=5)
        user = uuid.uuid4()
        guest = api.auth(Role.USER, user)
        claim_id = (await claim(api, event_id, guest)).json()["claim_id"]
        url = f"/api/v1/coupon-claims/{claim_id}"

        pending = await api.http.get(url, headers=guest)
        assert pending.status_code == 200
        assert pending.json() == {
            "claim_id": claim_id,
            "event_id": event_id,
            "status": "ACCEPTED",
            "user_coupon_id": None,
            "reason": None,
        }
        assert await issuance_of(api.platform).pump_once(api.platform.transport) == 1
        done = (await api.http.get(url, headers=guest)).json()
        assert done["status"] == "ISSUED"
        mine = (await api.http.get("/api/v1/coupons", headers=guest)).json()["items"]
        assert [c["id"] for c in mine] == [done["user_coupon_id"]]
        assert mine[0]["event_id"] == event_id

        stranger = api.auth()
        assert problem(await api.http.get(url, headers=stranger)) == (404, "claim_not_found")
        assert (await api.http.get(url)).status_code == 401
        for bogus in ("clm_nope", "x" * 68, f"clm_{uuid.uuid4().hex}{user.hex}"):
            answer = await api.http.get(f"/api/v1/coupon-claims/{bogus}", headers=guest)
            assert problem(answer) == (404, "claim_not_found"), bogus


async def test_sse_stream_delivers_the_users_claim_result(settings: Settings) -> None:
    async with (
        real_server(settings) as (base, platform),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        api = Api(http, platform)
        event_id = await http_drop(api, quantity=5)
        guest = api.auth()
        other = api.auth()

        async def first_claim_event(
            headers: dict[str, str], ready: asyncio.Event
        ) -> dict[str, str]:
            async with http.stream(
                "GET", "/api/v1/coupon-claims/stream", headers=headers
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                kind = None
                async for line in stream.aiter_lines():
                    if line.startswith(": live"):
                        ready.set()
                    elif line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: ") and kind == "claim":
                        data: dict[str, str] = orjson.loads(line.removeprefix("data: "))
                        return data
            raise AssertionError("stream ended")

        mine_ready, other_ready = asyncio.Event(), asyncio.Event()
        mine = asyncio.create_task(first_claim_event(guest, mine_ready))
        others = asyncio.create_task(first_claim_event(other, other_ready))
        await asyncio.wait_for(asyncio.gather(mine_ready.wait(), other_ready.wait()), timeout=10)

        accepted = await http.post(claims_url(event_id), headers=guest)
        assert accepted.status_code == 202
        result = await asyncio.wait_for(mine, timeout=10)
        assert result["claim_id"] == accepted.json()["claim_id"]
        assert result["status"] == "ISSUED"
        assert result["event_id"] == event_id
        assert result["user_coupon_id"]
        # Another user's stream hears nothing of it.
        await asyncio.sleep(0.3)
        assert not others.done()
        others.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await others
        unauthenticated = await http.get("/api/v1/coupon-claims/stream")
        assert unauthenticated.status_code == 401


async def test_claim_needs_a_valid_unrevoked_token(api: Api) -> None:
    event_id = await http_drop(api, quantity=5)
    assert problem(await api.http.post(claims_url(event_id))) == (401, "unauthorized")
    bogus = {"Authorization": "Bearer not-a-jwt"}
    assert problem(await claim(api, event_id, bogus)) == (401, "invalid_token")
    basic = {"Authorization": "Basic abc"}
    assert problem(await claim(api, event_id, basic)) == (401, "unauthorized")
    user = uuid.uuid4()
    headers = api.auth(Role.USER, user)
    await api.platform.revocations.revoke_tokens_issued_before(user, utcnow())
    assert problem(await claim(api, event_id, headers)) == (401, "invalid_token")
    assert (await redis_view(api.platform, uuid.UUID(event_id))).users == 0

    spec = (await api.http.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/coupon-events/{event_id}/claims"]["post"]
    assert "requestBody" not in operation
    schema = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ClaimAccepted"}
    assert {"401", "404", "409", "429", "503"} <= set(operation["responses"])

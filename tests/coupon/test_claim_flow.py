"""Event coupon claims end to end over HTTP: admit in Redis, persist through the transport."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx

from haot.platform.auth import Role
from haot.platform.clock import utcnow


def bearer(
    client: httpx.AsyncClient, role: Role, user_id: uuid.UUID | None = None
) -> dict[str, str]:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    token = platform.signer.issue(user_id or uuid.uuid4(), role).token
    return {"Authorization": f"Bearer {token}"}


async def open_event(client: httpx.AsyncClient, quantity: int | None) -> str:
    admin = bearer(client, Role.ADMIN)
    now = utcnow()
    coupon = await client.post(
        "/api/v1/admin/coupons",
        headers=admin,
        json={
            "name": "Winter drop",
            "discount_type": "PERCENT",
            "discount_value": 10,
            "max_discount": 30000,
            "min_order_amount": 50000,
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_to": (now + timedelta(days=30)).isoformat(),
        },
    )
    assert coupon.status_code == 201, coupon.text
    event = await client.post(
        "/api/v1/admin/coupon-events",
        headers=admin,
        json={
            "coupon_id": coupon.json()["id"],
            "starts_at": (now - timedelta(seconds=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "quantity": quantity,
        },
    )
    assert event.status_code == 201, event.text
    return str(event.json()["id"])


async def wait_issued(client: httpx.AsyncClient, headers: dict[str, str], claim_id: str) -> dict:
    for _ in range(200):
        status = await client.get(f"/api/v1/coupon-claims/{claim_id}", headers=headers)
        assert status.status_code == 200, status.text
        if status.json()["status"] != "ACCEPTED":
            return dict(status.json())
        await asyncio.sleep(0.02)
    raise AssertionError("claim never settled")


async def test_claim_is_accepted_then_issued_and_listed(app_client: httpx.AsyncClient) -> None:
    event_id = await open_event(app_client, quantity=5)
    user = bearer(app_client, Role.USER)
    claim = await app_client.post(f"/api/v1/coupon-events/{event_id}/claims", headers=user)
    assert claim.status_code == 202, claim.text
    assert claim.json()["status"] == "ACCEPTED"
    settled = await wait_issued(app_client, user, claim.json()["claim_id"])
    assert settled["status"] == "ISSUED"
    mine = await app_client.get("/api/v1/coupons", headers=user)
    assert [c["id"] for c in mine.json()["items"]] == [settled["user_coupon_id"]]
    again = await app_client.post(f"/api/v1/coupon-events/{event_id}/claims", headers=user)
    assert again.status_code == 409
    assert again.json()["code"] == "coupon_already_claimed"


async def test_concurrent_claims_issue_exactly_the_quantity(app_client: httpx.AsyncClient) -> None:
    event_id = await open_event(app_client, quantity=20)
    users = [bearer(app_client, Role.USER) for _ in range(60)]
    answers = await asyncio.gather(
        *(app_client.post(f"/api/v1/coupon-events/{event_id}/claims", headers=u) for u in users)
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(202) == 20
    assert all(a.json()["code"] == "coupon_sold_out" for a in answers if a.status_code == 409)
    assert codes.count(409) == 40
    accepted = [
        (u, a.json()["claim_id"])
        for u, a in zip(users, answers, strict=True)
        if a.status_code == 202
    ]
    outcomes = [await wait_issued(app_client, u, c) for u, c in accepted]
    assert all(o["status"] == "ISSUED" for o in outcomes)
    event = (await app_client.get(f"/api/v1/coupon-events/{event_id}")).json()
    assert (event["issued"], event["remaining"]) == (20, 0)
    assert (event["status"], event["closed_reason"]) == ("CLOSED", "EXHAUSTED")
    live = await app_client.get("/api/v1/coupon-events")
    assert event_id not in [e["id"] for e in live.json()["items"]]
    late = await app_client.post(
        f"/api/v1/coupon-events/{event_id}/claims", headers=bearer(app_client, Role.USER)
    )
    assert (late.status_code, late.json()["code"]) == (409, "coupon_sold_out")

"""A booking made by the reservation context served alone (issue 15, ADR 0018): its saga holds the
night, reserves the coupon, holds the points and creates the payment in another process, over
HTTP with service credentials, and the other process's refusals reach the guest unchanged."""

from __future__ import annotations

import uuid

import httpx

from haot.app import create_app
from haot.platform.auth import Role
from haot.platform.settings import Settings
from tests.lodging.factories import create_listing, day, make_host
from tests.support.gateway import InMemoryGateway
from tests.support.server import serving

STEPS = ("identity", "lodging", "coupon", "point", "payment")


async def test_the_saga_runs_its_steps_in_another_process(settings: Settings) -> None:
    steps_app = create_app(settings, contexts=STEPS, gateway=InMemoryGateway())
    async with serving(steps_app) as steps:
        split = settings.model_copy(
            update={
                f"{context}_url": steps for context in ("lodging", "coupon", "point", "payment")
            }
        )
        reservations_app = create_app(split, contexts=("reservation",))
        async with serving(reservations_app) as reservations:
            platform = steps_app.state.platform
            async with httpx.AsyncClient(base_url=steps, timeout=10) as api:
                host = await make_host(api)
                listing = await create_listing(api, host, price=120_000, total_rooms=1)
            stay = {
                "room_type_id": listing.room_type["id"],
                "check_in": day(3).isoformat(),
                "check_out": day(5).isoformat(),
                "guests": 2,
            }

            def guest() -> dict[str, str]:
                token = platform.signer.issue(uuid.uuid4(), Role.USER).token
                return {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}

            async with httpx.AsyncClient(base_url=reservations, timeout=10) as booking:
                first = await booking.post("/api/v1/reservations", json=stay, headers=guest())
                assert first.status_code == 201, first.text
                created = first.json()
                assert (created["status"], created["amount"]) == ("PENDING", 240_000)
                assert created["payment_id"].startswith("pay_")
                # The last room is held in the lodging's process: the next guest is refused there.
                second = await booking.post("/api/v1/reservations", json=stay, headers=guest())
                assert second.status_code == 409, second.text
                assert second.json()["code"] == "sold_out"
                past = stay | {"check_in": day(-3).isoformat(), "check_out": day(-1).isoformat()}
                refused = await booking.post("/api/v1/reservations", json=past, headers=guest())
                assert refused.status_code == 422, refused.text

            async with httpx.AsyncClient(base_url=steps, timeout=10) as api:
                calendar = await api.get(
                    f"/api/v1/host/room-types/{listing.room_type['id']}/calendar",
                    params={"month": day(3).isoformat()[:7]},
                    headers=host.headers,
                )
                held = {d["date"]: d["held"] for d in calendar.json()["days"]}
                assert held[day(3).isoformat()] == 1
                payment = await api.get(
                    f"/api/v1/payments/{created['payment_id']}",
                    headers={
                        "Authorization": "Bearer "
                        + platform.signer.issue(uuid.uuid4(), Role.ADMIN).token
                    },
                )
                assert payment.status_code == 200, payment.text
                assert payment.json()["amount"] == 240_000

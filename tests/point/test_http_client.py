"""The point context served alone (ADR 0018): the reservation saga's point client over real HTTP
answers as the in-process one does, raises the same errors, and the internal routes take only
the reservation context's service token (never a user's); the all-in-one app serves none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from haot.platform.auth import Role
from haot.platform.container import Platform
from haot.platform.service_auth import ServiceTokens
from haot.platform.service_client import ServiceClient
from haot.platform.settings import Settings
from haot.point.client import ERRORS, HttpPointClient, InProcessPointClient
from haot.point.schemas import GrantCreate
from haot.point.service import InsufficientPoints
from tests.support.server import context_alone, service_client


@pytest.fixture
async def point_service(settings: Settings) -> AsyncIterator[tuple[str, Platform]]:
    """``haot serve --context point``: the point context alone, on a loopback port."""
    async with context_alone(settings, "point") as served:
        yield served


def http_client(base: str, settings: Settings, caller: str = "reservation") -> ServiceClient:
    return service_client(base, settings, "point", ERRORS, caller=caller)


async def test_the_http_client_answers_as_the_in_process_one(
    point_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = point_service
    in_process = InProcessPointClient(platform.services["point"])
    service = http_client(base, settings)
    over_http = HttpPointClient(service)
    guest = uuid.uuid4()
    await platform.services["point"].grant(
        GrantCreate(user_id=guest, amount=5_000, reason="welcome")
    )
    try:
        assert await over_http.spendable(user_id=guest) == 5_000
        reservation = uuid.uuid4()
        await over_http.hold(user_id=guest, reservation_id=reservation, amount=2_000)
        await over_http.hold(user_id=guest, reservation_id=reservation, amount=2_000)  # a retry
        assert await over_http.spendable(user_id=guest) == 3_000
        assert await in_process.spendable(user_id=guest) == 3_000
        with pytest.raises(InsufficientPoints):
            await over_http.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=9_000)
        with pytest.raises(InsufficientPoints):
            await in_process.hold(user_id=guest, reservation_id=uuid.uuid4(), amount=9_000)
        assert await over_http.spendable(user_id=guest) == 3_000
    finally:
        await service.aclose()


async def test_internal_routes_take_only_the_callers_they_name(
    point_service: tuple[str, Platform], settings: Settings
) -> None:
    base, platform = point_service
    path = f"/internal/v1/point/users/{uuid.uuid4()}/spendable"
    admin = platform.signer.issue(uuid.uuid4(), Role.ADMIN).token
    coupon = ServiceTokens(settings.service_token_secret, caller="coupon").for_callee("point")
    wrong_callee = ServiceTokens(settings.service_token_secret, caller="reservation").for_callee(
        "lodging"
    )
    async with httpx.AsyncClient(base_url=base) as raw:
        assert (await raw.get(path)).status_code == 401
        for token, status in ((admin, 401), (wrong_callee, 401), (coupon, 403)):
            answer = await raw.get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == status, answer.text


async def test_the_all_in_one_app_serves_no_internal_route(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    token = ServiceTokens(settings.service_token_secret, caller="reservation").for_callee("point")
    answer = await app_client.get(
        f"/internal/v1/point/users/{uuid.uuid4()}/spendable",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 404

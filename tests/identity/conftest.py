"""Fixtures of the identity suite: the platform and the service, wired as ``bootstrap`` does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from haot.bootstrap import build_platform
from haot.identity.service import IdentityService
from haot.platform.container import Platform
from haot.platform.settings import Settings


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    """The identity context on the backend under test, without background workers (so outbox rows
    stay where the use case wrote them)."""
    platform = build_platform(settings, contexts=("identity",))
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


@pytest.fixture
def identity(platform: Platform) -> IdentityService:
    service: IdentityService = platform.services["identity"]
    return service

"""The one place where contexts are wired to the platform and to each other."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from haot.platform.container import Platform
from haot.platform.settings import CONTEXTS, Settings


def build_platform(settings: Settings, *, contexts: tuple[str, ...] = CONTEXTS) -> Platform:
    platform = Platform(settings, contexts=contexts)
    if "identity" in contexts:
        _wire_identity(platform)
    if "lodging" in contexts:
        _wire_lodging(platform)
    return platform


def _wire_identity(platform: Platform) -> None:
    from haot.identity.client import InProcessIdentityClient
    from haot.identity.service import IdentityService, owasp_password_hasher

    service = IdentityService(
        uow=platform.uow_factory("identity"),
        signer=platform.signer,
        revocations=platform.revocations,
        hasher=owasp_password_hasher(),
        refresh_ttl=timedelta(seconds=platform.settings.refresh_token_ttl_seconds),
    )
    platform.services["identity"] = service
    platform.services["identity.client"] = InProcessIdentityClient(service)


def _wire_lodging(platform: Platform) -> None:
    from haot.lodging.cache import LodgingCache
    from haot.lodging.search import LodgingSearch
    from haot.lodging.service import LodgingService

    uow = platform.uow_factory("lodging")
    cache = LodgingCache(platform.redis)
    platform.services["lodging"] = LodgingService(uow=uow, cache=cache)
    platform.services["lodging.search"] = LodgingSearch(uow=uow, cache=cache)


def api_routers(contexts: tuple[str, ...]) -> list[APIRouter]:
    routers: list[APIRouter] = []
    if "identity" in contexts:
        from haot.identity.api import router as identity_router

        routers.append(identity_router)
    if "lodging" in contexts:
        from haot.lodging.api import router as lodging_router

        routers.append(lodging_router)
    return routers

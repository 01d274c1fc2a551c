"""Demo data for ``make run``: idempotent, and written through each context's service layer (never
straight into tables), so the demo obeys the same rules as real use."""

from __future__ import annotations

import structlog

from haot.bootstrap import build_platform
from haot.identity.schemas import SignUp
from haot.identity.service import EmailTaken, IdentityService
from haot.platform.auth import Role
from haot.platform.settings import Settings

log = structlog.get_logger(__name__)

DEMO_PASSWORD = "haot-demo-password"

DEMO_ACCOUNTS: list[tuple[str, str, Role]] = [
    ("admin@haot.dev", "Admin Park", Role.ADMIN),
    ("host1@haot.dev", "Host Kim", Role.HOST),
    ("host2@haot.dev", "Host Lee", Role.HOST),
    ("host3@haot.dev", "Host Choi", Role.HOST),
    ("guest@haot.dev", "Guest Jung", Role.USER),
    ("guest2@haot.dev", "Guest Kang", Role.USER),
]


async def seed_accounts(identity: IdentityService) -> int:
    created = 0
    for email, name, role in DEMO_ACCOUNTS:
        try:
            await identity.create_user(SignUp(email=email, password=DEMO_PASSWORD, name=name), role)
            created += 1
        except EmailTaken:
            continue
    return created


async def seed(settings: Settings) -> None:
    platform = build_platform(settings)
    try:
        accounts = await seed_accounts(platform.services["identity"])
        print(f"seeded {accounts} new demo accounts (password: {DEMO_PASSWORD})")
    finally:
        await platform.stop()

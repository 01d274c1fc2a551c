"""Demo data for ``make run``: idempotent, and written through each context's service layer (never
straight into tables), so the demo obeys the same rules as real use."""

from __future__ import annotations

import structlog

from haot.bootstrap import build_platform
from haot.identity.schemas import SignUp, UserRead
from haot.identity.service import EmailTaken, IdentityService
from haot.platform.auth import Role
from haot.platform.settings import Settings
from haot.seed_lodgings import principal_of, seed_lodgings

log = structlog.get_logger(__name__)

DEMO_PASSWORD = "haot-demo-password"  # noqa: S105 (documented demo credential)

DEMO_ACCOUNTS: list[tuple[str, str, Role]] = [
    ("admin@haot.dev", "Admin Park", Role.ADMIN),
    ("host1@haot.dev", "Host Kim", Role.HOST),
    ("host2@haot.dev", "Host Lee", Role.HOST),
    ("host3@haot.dev", "Host Choi", Role.HOST),
    ("guest@haot.dev", "Guest Jung", Role.USER),
    ("guest2@haot.dev", "Guest Kang", Role.USER),
]


async def seed_accounts(identity: IdentityService) -> dict[str, UserRead]:
    """The demo accounts by email, created where missing."""
    accounts: dict[str, UserRead] = {}
    for email, name, role in DEMO_ACCOUNTS:
        try:
            accounts[email] = await identity.create_user(
                SignUp(email=email, password=DEMO_PASSWORD, name=name), role
            )
        except EmailTaken:
            accounts[email] = await identity.get_by_email(email)
    return accounts


async def seed(settings: Settings) -> None:
    platform = build_platform(settings)
    try:
        accounts = await seed_accounts(platform.services["identity"])
        print(f"demo accounts ready (password: {DEMO_PASSWORD})")
        hosts = [
            principal_of(user.id, Role.HOST) for user in accounts.values() if user.role is Role.HOST
        ]
        created = await seed_lodgings(platform.services["lodging"], hosts)
        print(f"seeded {created} demo lodgings" if created else "demo lodgings already present")
    finally:
        await platform.stop()

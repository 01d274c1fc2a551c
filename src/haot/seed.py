"""Demo data for ``make run``: idempotent, and written through each context's service layer (never
straight into tables), so the demo obeys the same rules as real use."""

from __future__ import annotations

from datetime import timedelta

import structlog

from haot.bootstrap import build_platform
from haot.coupon.domain import DiscountType
from haot.coupon.schemas import CouponCreate, EventCreate
from haot.identity.schemas import SignUp, UserRead
from haot.identity.service import EmailTaken, IdentityService
from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.platform.settings import RefusedInProduction, Settings
from haot.point.schemas import GrantCreate
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


async def seed_promotions(platform: Platform, accounts: dict[str, UserRead]) -> None:
    """An open first-come-first-served event and some points for the demo guests (once, with
    the lodgings: a re-run finds lodgings present and skips this too)."""
    now = utcnow()
    coupons = platform.services["coupon"]
    coupon = await coupons.create_coupon(
        CouponCreate(
            name="Winter getaway 10% off",
            discount_type=DiscountType.PERCENT,
            discount_value=10,
            max_discount=30_000,
            min_order_amount=100_000,
            valid_from=now,
            valid_to=now + timedelta(days=60),
        )
    )
    await coupons.create_event(
        EventCreate(
            coupon_id=coupon.id,
            name="First 100 guests",
            starts_at=now,
            ends_at=now + timedelta(days=7),
            quantity=100,
        )
    )
    for email in ("guest@haot.dev", "guest2@haot.dev"):
        await platform.services["point"].grant(
            GrantCreate(user_id=accounts[email].id, amount=20_000, reason="welcome points")
        )


async def seed(settings: Settings) -> None:
    if settings.env == "production":
        raise RefusedInProduction(
            "haot seed refuses to run in production: it would create admin@haot.dev with the "
            "published demo password"
        )
    platform = build_platform(settings)
    try:
        accounts = await seed_accounts(platform.services["identity"])
        print(f"demo accounts ready (password: {DEMO_PASSWORD})")
        hosts = [
            principal_of(user.id, Role.HOST) for user in accounts.values() if user.role is Role.HOST
        ]
        created = await seed_lodgings(platform.services["lodging"], hosts)
        print(f"seeded {created} demo lodgings" if created else "demo lodgings already present")
        if created:
            await seed_promotions(platform, accounts)
            print("seeded an open coupon event and demo guest points")
    finally:
        await platform.stop()

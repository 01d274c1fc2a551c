"""Identity use cases called directly on both database backends."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from haot.identity.domain import digest_refresh_token
from haot.identity.models import RefreshToken, User
from haot.identity.schemas import (
    AdminUserUpdate,
    PasswordChange,
    SignUp,
    TokenPair,
    UserUpdate,
)
from haot.identity.service import (
    EmailTaken,
    IdentityService,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    UserNotFound,
    WeakPassword,
    owasp_password_hasher,
)
from haot.platform.auth import Role
from haot.platform.container import Platform
from haot.platform.ids import new_id
from haot.platform.web import PageParams
from tests.identity.helpers import NEW_PASSWORD, PASSWORD, GatedHasher, count_users, unique_email


def sign_up_data(email: str | None = None, *, host: bool = False, name: str = "Kim") -> SignUp:
    return SignUp(email=email or unique_email(), password=PASSWORD, name=name, host=host)


def service_with(
    platform: Platform, hasher: PasswordHasher, *, refresh_ttl: timedelta = timedelta(days=1)
) -> IdentityService:
    return IdentityService(
        uow=platform.uow_factory("identity"),
        signer=platform.signer,
        revocations=platform.revocations,
        hasher=hasher,
        refresh_ttl=refresh_ttl,
    )


async def stored_user(platform: Platform, email: str) -> User:
    async with platform.databases.sessions_for("identity")() as session:
        return (await session.scalars(select(User).where(User.email == email))).one()


async def refresh_rows(platform: Platform) -> list[RefreshToken]:
    async with platform.databases.sessions_for("identity")() as session:
        return list((await session.scalars(select(RefreshToken))).all())


# --- sign up -----------------------------------------------------------------------------------


async def test_sign_up_stores_a_normalised_email_and_an_argon2id_hash(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data("  Kim.Minji@Example.COM"))

    assert user.email == "kim.minji@example.com"
    assert user.role is Role.USER
    assert user.active
    stored = await stored_user(platform, "kim.minji@example.com")
    assert PASSWORD not in stored.password_hash
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_host_flag_makes_a_host(identity: IdentityService) -> None:
    assert (await identity.sign_up(sign_up_data(host=True))).role is Role.HOST


async def test_email_is_unique_whatever_its_case(identity: IdentityService) -> None:
    await identity.sign_up(sign_up_data("lee@example.com"))
    with pytest.raises(EmailTaken):
        await identity.sign_up(sign_up_data("LEE@Example.com"))


async def test_concurrent_sign_ups_with_one_email_create_one_account(
    identity: IdentityService, platform: Platform
) -> None:
    results = await asyncio.gather(
        *(identity.sign_up(sign_up_data("race@example.com")) for _ in range(5)),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, EmailTaken) for r in results if isinstance(r, BaseException))
    assert await count_users(platform) == 1


async def test_weak_password_creates_nothing(identity: IdentityService, platform: Platform) -> None:
    with pytest.raises(WeakPassword):
        await identity.sign_up(SignUp(email="weak@example.com", password="aaaaaaaaaaaa", name="K"))
    assert await count_users(platform) == 0


async def test_operators_can_create_admins(identity: IdentityService) -> None:
    admin = await identity.create_user(sign_up_data(), Role.ADMIN)
    assert admin.role is Role.ADMIN
    assert (await identity.get(admin.id)).role is Role.ADMIN


# --- log in ------------------------------------------------------------------------------------


async def test_log_in_issues_a_verifiable_access_token(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data(host=True))
    pair = await identity.log_in(user.email.upper(), PASSWORD)

    principal = platform.signer.verify(pair.access_token)
    assert (principal.user_id, principal.role) == (user.id, Role.HOST)
    assert pair.expires_in == platform.settings.access_token_ttl_seconds
    assert pair.token_type == "Bearer"


async def test_wrong_password_unknown_email_and_deactivated_account_look_alike(
    identity: IdentityService,
) -> None:
    user = await identity.sign_up(sign_up_data())
    failures = []
    for email, password in [(user.email, "wrong password!"), ("nobody@example.com", PASSWORD)]:
        with pytest.raises(InvalidCredentials) as caught:
            await identity.log_in(email, password)
        failures.append((caught.value.code, caught.value.detail))
    await identity.admin_update(user.id, AdminUserUpdate(active=False))
    with pytest.raises(InvalidCredentials) as caught:
        await identity.log_in(user.email, PASSWORD)
    failures.append((caught.value.code, caught.value.detail))

    assert len(set(failures)) == 1


async def test_log_in_upgrades_a_hash_made_with_weaker_parameters(
    identity: IdentityService, platform: Platform
) -> None:
    legacy = service_with(platform, PasswordHasher(time_cost=1, memory_cost=8 * 1024))
    user = await legacy.sign_up(sign_up_data())
    assert "m=8192,t=1" in (await stored_user(platform, user.email)).password_hash

    await identity.log_in(user.email, PASSWORD)

    upgraded = (await stored_user(platform, user.email)).password_hash
    assert "m=19456,t=2,p=1" in upgraded
    await identity.log_in(user.email, PASSWORD)


# --- log in racing an account change -------------------------------------------------------------


@pytest.fixture
def gated(platform: Platform) -> tuple[IdentityService, GatedHasher]:
    hasher = GatedHasher()
    return service_with(platform, hasher), hasher


async def _log_in_while(
    service: IdentityService,
    hasher: GatedHasher,
    email: str,
    change: Coroutine[Any, Any, object],
) -> asyncio.Task[TokenPair]:
    """Start a log-in, run ``change`` while its password is being verified, then let it finish."""
    hasher.arm()
    login = asyncio.create_task(service.log_in(email, PASSWORD))
    assert await asyncio.to_thread(hasher.entered.wait, 10)
    try:
        await change
    finally:
        hasher.release.set()
    await asyncio.wait([login])
    return login


async def test_log_in_racing_a_demotion_gets_no_admin_token(
    gated: tuple[IdentityService, GatedHasher], platform: Platform
) -> None:
    service, hasher = gated
    admin = await service.create_user(sign_up_data(), Role.ADMIN)

    login = await _log_in_while(
        service,
        hasher,
        admin.email,
        service.admin_update(admin.id, AdminUserUpdate(role=Role.USER)),
    )

    principal = platform.signer.verify(login.result().access_token)
    assert principal.role is not Role.ADMIN or await platform.revocations.is_revoked(principal)


async def test_log_in_racing_a_deactivation_fails(
    gated: tuple[IdentityService, GatedHasher], platform: Platform
) -> None:
    service, hasher = gated
    user = await service.sign_up(sign_up_data())

    login = await _log_in_while(
        service, hasher, user.email, service.admin_update(user.id, AdminUserUpdate(active=False))
    )

    assert isinstance(login.exception(), InvalidCredentials)
    assert await refresh_rows(platform) == []


async def test_log_in_with_the_old_password_racing_a_password_change_fails(
    gated: tuple[IdentityService, GatedHasher], platform: Platform
) -> None:
    service, hasher = gated
    user = await service.sign_up(sign_up_data())
    change = service.change_password(
        user.id, PasswordChange(current_password=PASSWORD, new_password=NEW_PASSWORD)
    )

    login = await _log_in_while(service, hasher, user.email, change)

    assert isinstance(login.exception(), InvalidCredentials)
    assert await refresh_rows(platform) == []


# --- refresh tokens ----------------------------------------------------------------------------


async def test_refresh_tokens_are_stored_only_as_digests(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    pair = await identity.log_in(user.email, PASSWORD)

    (row,) = await refresh_rows(platform)
    assert row.token_digest == digest_refresh_token(pair.refresh_token)
    assert row.user_id == user.id
    assert row.expires_at - row.created_at == timedelta(days=14)


async def test_refresh_rotates_within_the_same_family(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    first = await identity.log_in(user.email, PASSWORD)

    second = await identity.refresh(first.refresh_token)
    third = await identity.refresh(second.refresh_token)

    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert platform.signer.verify(third.access_token).user_id == user.id
    rows = await refresh_rows(platform)
    assert len(rows) == 3
    assert len({row.family_id for row in rows}) == 1
    assert sum(row.used_at is None for row in rows) == 1


async def test_reuse_revokes_only_the_family_it_belongs_to(identity: IdentityService) -> None:
    user = await identity.sign_up(sign_up_data())
    phone = await identity.log_in(user.email, PASSWORD)
    laptop = await identity.log_in(user.email, PASSWORD)
    rotated = await identity.refresh(phone.refresh_token)

    with pytest.raises(RefreshTokenReused):
        await identity.refresh(phone.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        await identity.refresh(rotated.refresh_token)
    assert await identity.refresh(laptop.refresh_token)


async def test_expired_refresh_token_is_refused(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    short_lived = service_with(platform, owasp_password_hasher(), refresh_ttl=timedelta(0))
    pair = await short_lived.log_in(user.email, PASSWORD)

    with pytest.raises(InvalidRefreshToken):
        await identity.refresh(pair.refresh_token)


async def test_unknown_refresh_token_is_refused(identity: IdentityService) -> None:
    with pytest.raises(InvalidRefreshToken):
        await identity.refresh("never-issued-token-0123456789")


async def test_log_out_revokes_that_session_only(identity: IdentityService) -> None:
    user = await identity.sign_up(sign_up_data())
    phone = await identity.log_in(user.email, PASSWORD)
    laptop = await identity.log_in(user.email, PASSWORD)

    await identity.log_out(phone.refresh_token)
    await identity.log_out("never-issued-token-0123456789")

    with pytest.raises(InvalidRefreshToken):
        await identity.refresh(phone.refresh_token)
    assert await identity.refresh(laptop.refresh_token)


# --- profile and password ----------------------------------------------------------------------


async def test_profile_update_changes_only_the_given_fields(identity: IdentityService) -> None:
    user = await identity.sign_up(
        SignUp(email=unique_email(), password=PASSWORD, name="Kim", phone="010-1111-2222")
    )

    updated = await identity.update_me(user.id, UserUpdate(name="Kim Minji"))

    assert (updated.name, updated.phone, updated.email) == (
        "Kim Minji",
        "010-1111-2222",
        user.email,
    )
    assert (await identity.get(user.id)).name == "Kim Minji"


async def test_user_is_found_by_email_in_any_case(identity: IdentityService) -> None:
    user = await identity.sign_up(sign_up_data("seoyeon@example.com"))

    assert (await identity.get_by_email(" SeoYeon@Example.com ")).id == user.id
    with pytest.raises(UserNotFound):
        await identity.get_by_email("nobody@example.com")


async def test_unknown_user_is_not_found(identity: IdentityService) -> None:
    with pytest.raises(UserNotFound):
        await identity.get(new_id())
    with pytest.raises(UserNotFound):
        await identity.admin_update(new_id(), AdminUserUpdate(role=Role.HOST))


async def test_password_change_revokes_every_session(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    pair = await identity.log_in(user.email, PASSWORD)

    await identity.change_password(
        user.id, PasswordChange(current_password=PASSWORD, new_password=NEW_PASSWORD)
    )

    assert await platform.revocations.is_revoked(platform.signer.verify(pair.access_token))
    with pytest.raises(InvalidRefreshToken):
        await identity.refresh(pair.refresh_token)
    with pytest.raises(InvalidCredentials):
        await identity.log_in(user.email, PASSWORD)
    fresh = await identity.log_in(user.email, NEW_PASSWORD)
    assert not await platform.revocations.is_revoked(platform.signer.verify(fresh.access_token))


async def test_password_change_needs_the_current_password_and_a_strong_new_one(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    before = (await stored_user(platform, user.email)).password_hash

    with pytest.raises(InvalidCredentials):
        await identity.change_password(
            user.id, PasswordChange(current_password="not my password", new_password=NEW_PASSWORD)
        )
    with pytest.raises(WeakPassword):
        await identity.change_password(
            user.id, PasswordChange(current_password=PASSWORD, new_password="1111111111")
        )

    assert (await stored_user(platform, user.email)).password_hash == before


# --- admin -------------------------------------------------------------------------------------


async def test_role_change_revokes_the_users_tokens(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    pair = await identity.log_in(user.email, PASSWORD)

    updated = await identity.admin_update(user.id, AdminUserUpdate(role=Role.HOST))

    assert updated.role is Role.HOST
    assert await platform.revocations.is_revoked(platform.signer.verify(pair.access_token))
    with pytest.raises(InvalidRefreshToken):
        await identity.refresh(pair.refresh_token)
    fresh = await identity.log_in(user.email, PASSWORD)
    assert platform.signer.verify(fresh.access_token).role is Role.HOST


async def test_deactivated_user_can_be_reactivated(identity: IdentityService) -> None:
    user = await identity.sign_up(sign_up_data())
    assert not (await identity.admin_update(user.id, AdminUserUpdate(active=False))).active
    assert (await identity.admin_update(user.id, AdminUserUpdate(active=True))).active
    assert await identity.log_in(user.email, PASSWORD)


async def test_unchanged_role_revokes_nothing(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(sign_up_data())
    pair = await identity.log_in(user.email, PASSWORD)

    await identity.admin_update(user.id, AdminUserUpdate(role=Role.USER, active=True))

    assert not await platform.revocations.is_revoked(platform.signer.verify(pair.access_token))
    assert await identity.refresh(pair.refresh_token)


async def test_user_search_filters_and_pages(identity: IdentityService) -> None:
    kim = await identity.sign_up(sign_up_data("kim@example.com", name="Kim Minji"))
    lee = await identity.sign_up(sign_up_data("lee@example.com", name="Lee Jiho", host=True))
    park = await identity.sign_up(sign_up_data("park@example.org", name="Park Minjun"))
    await identity.admin_update(park.id, AdminUserUpdate(active=False))

    async def ids(**filters: object) -> list[str]:
        page = await identity.list_users(
            q=filters.get("q"),  # type: ignore[arg-type]
            role=filters.get("role"),  # type: ignore[arg-type]
            active=filters.get("active"),  # type: ignore[arg-type]
            paging=filters.get("paging", PageParams(page=1, size=20)),  # type: ignore[arg-type]
        )
        return [str(item.id) for item in page.items]

    newest_first = [str(park.id), str(lee.id), str(kim.id)]
    assert await ids() == newest_first
    assert await ids(q="MINJ") == [str(park.id), str(kim.id)]
    assert await ids(q="example.org") == [str(park.id)]
    assert await ids(role=Role.HOST) == [str(lee.id)]
    assert await ids(active=False) == [str(park.id)]
    assert await ids(active=True, q="minj") == [str(kim.id)]
    assert await ids(paging=PageParams(page=2, size=2)) == [str(kim.id)]
    assert await ids(q="_") == []
    assert await ids(q="%") == []


async def test_search_finds_literal_wildcard_characters(identity: IdentityService) -> None:
    under = await identity.sign_up(sign_up_data("under_score@example.com", name="Ha_Neul"))
    await identity.sign_up(sign_up_data("plain@example.com", name="Plain"))

    page = await identity.list_users(
        q="r_s", role=None, active=None, paging=PageParams(page=1, size=20)
    )

    assert [item.id for item in page.items] == [under.id]


async def test_concurrent_password_changes_from_one_current_password_have_one_winner(
    identity: IdentityService,
) -> None:
    user = await identity.sign_up(sign_up_data())
    candidates = ["first new password", "second new password"]

    results = await asyncio.gather(
        *(
            identity.change_password(
                user.id, PasswordChange(current_password=PASSWORD, new_password=new)
            )
            for new in candidates
        ),
        return_exceptions=True,
    )

    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(losers) == 1
    assert isinstance(losers[0], InvalidCredentials)
    winner = candidates[results.index(None)]
    assert await identity.log_in(user.email, winner)

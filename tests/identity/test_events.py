"""Identity events leave through the outbox, in the transaction of the change they describe."""

from __future__ import annotations

import pytest

from haot.identity import events
from haot.identity.schemas import AdminUserUpdate, SignUp, UserUpdate
from haot.identity.service import EmailTaken, IdentityService, WeakPassword
from haot.platform.auth import Role
from haot.platform.container import Platform
from tests.identity.helpers import PASSWORD, outbox_events, unique_email


async def test_sign_up_writes_user_registered(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(
        SignUp(email=unique_email(), password=PASSWORD, name="K", host=True)
    )

    (row,) = await outbox_events(platform, events.UserRegistered.TYPE)
    assert row.payload == {"user_id": str(user.id), "role": "HOST", "name": "K"}
    assert (row.key, row.topic) == (str(user.id), "haot.identity")
    assert row.published_at is None


async def test_failed_sign_ups_write_no_event(
    identity: IdentityService, platform: Platform
) -> None:
    email = unique_email()
    await identity.sign_up(SignUp(email=email, password=PASSWORD, name="K"))
    with pytest.raises(EmailTaken):
        await identity.sign_up(SignUp(email=email.upper(), password=PASSWORD, name="K"))
    with pytest.raises(WeakPassword):
        await identity.sign_up(SignUp(email=unique_email(), password="short", name="K"))

    assert len(await outbox_events(platform, events.UserRegistered.TYPE)) == 1


async def test_role_change_writes_user_role_changed(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(SignUp(email=unique_email(), password=PASSWORD, name="K"))

    await identity.admin_update(user.id, AdminUserUpdate(role=Role.HOST))
    await identity.admin_update(user.id, AdminUserUpdate(role=Role.HOST))  # no change, no event

    (row,) = await outbox_events(platform, events.UserRoleChanged.TYPE)
    assert row.payload == {"user_id": str(user.id), "old_role": "USER", "new_role": "HOST"}
    assert row.key == str(user.id)


async def test_deactivation_and_reactivation_write_events(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(SignUp(email=unique_email(), password=PASSWORD, name="K"))

    await identity.admin_update(user.id, AdminUserUpdate(active=False))
    await identity.admin_update(user.id, AdminUserUpdate(active=True))

    assert [r.payload for r in await outbox_events(platform, events.UserDeactivated.TYPE)] == [
        {"user_id": str(user.id)}
    ]
    assert len(await outbox_events(platform, events.UserReactivated.TYPE)) == 1


async def test_operator_created_admin_is_registered_then_promoted(
    identity: IdentityService, platform: Platform
) -> None:
    admin = await identity.create_user(
        SignUp(email=unique_email(), password=PASSWORD, name="K"), Role.ADMIN
    )

    (registered,) = await outbox_events(platform, events.UserRegistered.TYPE)
    (promoted,) = await outbox_events(platform, events.UserRoleChanged.TYPE)
    assert registered.payload["user_id"] == promoted.payload["user_id"] == str(admin.id)
    assert promoted.payload["new_role"] == "ADMIN"
    assert registered.id < promoted.id


async def test_a_new_name_writes_user_renamed(
    identity: IdentityService, platform: Platform
) -> None:
    user = await identity.sign_up(SignUp(email=unique_email(), password=PASSWORD, name="K"))
    await identity.update_me(user.id, UserUpdate(name="K"))  # unchanged: nothing to announce
    assert await outbox_events(platform, events.UserRenamed.TYPE) == []
    await identity.update_me(user.id, UserUpdate(name="Kim"))
    (row,) = await outbox_events(platform, events.UserRenamed.TYPE)
    assert row.payload == {"user_id": str(user.id), "name": "Kim"}
    assert row.key == str(user.id)  # the same partition as the user's registration

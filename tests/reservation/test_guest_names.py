"""Hosts (and admins) see each reservation's guest by name: the reservation context keeps the
names the identity context announces (``identity.user_registered``, ``identity.user_renamed``),
so the host's list needs no call to identity per row. Both database engines."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete

from haot.identity.events import UserRegistered, UserRenamed
from haot.identity.schemas import SignUp, UserUpdate
from haot.platform.auth import Principal, Role
from haot.platform.clock import utcnow
from haot.platform.web import PageParams
from haot.reservation.guests import on_registered, on_renamed
from haot.reservation.models import Guest
from haot.reservation.schemas import HostReservationRead, StayRequest
from tests.reservation.conftest import World

PASSWORD = "a long and unusual passphrase 7"


async def signed_up(world: World, name: str) -> Principal:
    user = await world.platform.services["identity"].sign_up(
        SignUp(email=f"{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD, name=name)
    )
    return Principal(user_id=user.id, role=Role.USER, issued_at=utcnow())


async def book(world: World, guest: Principal, start: int) -> uuid.UUID:
    check_in = world.today + timedelta(days=start)
    stay = StayRequest(
        room_type_id=world.room_type_id,
        check_in=check_in,
        check_out=check_in + timedelta(days=1),
        guests=2,
    )
    created = await world.platform.services["reservation"].create(guest, stay, idempotency_key=None)
    return uuid.UUID(str(created.id))


async def hosts_view(world: World) -> dict[uuid.UUID, HostReservationRead]:
    page = await world.platform.services["reservation"].list_with_guests(
        paging=PageParams(page=1, size=50), host_id=world.host.user_id
    )
    return {item.id: item for item in page.items}


async def test_the_host_sees_each_guest_by_the_name_they_go_by(world: World) -> None:
    jiwoo = await signed_up(world, "김지우")
    minted = world.guest()  # an account whose name was never announced here
    await world.settle()
    first = await book(world, jiwoo, 3)
    unnamed = await book(world, minted, 4)

    seen = await hosts_view(world)
    assert seen[first].guest_name == "김지우"
    assert seen[unnamed].guest_name is None

    await world.platform.services["identity"].update_me(jiwoo.user_id, UserUpdate(name="Kim Jiwoo"))
    await world.settle()
    assert (await hosts_view(world))[first].guest_name == "Kim Jiwoo"

    # Guests read their own reservations as before: no guest_name field.
    own = await world.platform.services["reservation"].list(
        paging=PageParams(page=1, size=50), user_id=jiwoo.user_id
    )
    assert [item.id for item in own.items] == [first]
    assert "guest_name" not in own.items[0].model_dump()


async def test_saving_the_same_name_announces_nothing(world: World) -> None:
    guest = await signed_up(world, "Lee Seoyeon")
    await world.settle()
    before = len(await world.outbox_all())
    identity = world.platform.services["identity"]
    await identity.update_me(guest.user_id, UserUpdate(name="Lee Seoyeon"))
    await identity.update_me(guest.user_id, UserUpdate(phone="010-1234-5678"))
    assert len(await world.outbox_all()) == before


async def test_a_registration_never_overwrites_a_later_name(world: World) -> None:
    """Events of one user arrive in order (one partition per user); if a registration were
    applied after a rename all the same (a dead letter retried late), the rename stands."""
    user_id = uuid.uuid4()
    uow = world.platform.uow_factory("reservation")
    async with uow() as unit:
        await on_renamed(unit, UserRenamed(user_id=user_id, name="Park Minjun"))
        await unit.commit()
    async with uow() as unit:
        await on_registered(unit, UserRegistered(user_id=user_id, role="USER", name="Old Name"))
        await unit.commit()
    async with uow() as unit:
        await on_renamed(unit, UserRenamed(user_id=user_id, name="Park Min-jun"))
        await unit.commit()
    guest = Principal(user_id=user_id, role=Role.USER, issued_at=utcnow())
    booked = await book(world, guest, 5)
    assert (await hosts_view(world))[booked].guest_name == "Park Min-jun"


async def test_the_host_and_admin_lists_carry_the_name_over_http(api_world: World) -> None:
    world = api_world
    guest = await signed_up(world, "최하은")
    await world.settle()
    booked = await book(world, guest, 6)
    for principal, path in (
        (world.host, "/api/v1/host/reservations"),
        (world.principal(Role.ADMIN), "/api/v1/admin/reservations"),
    ):
        page = await world.http.get(path, headers=world.auth(principal))
        assert page.status_code == 200, page.text
        (item,) = [i for i in page.json()["items"] if i["id"] == str(booked)]
        assert item["guest_name"] == "최하은"
    own = await world.http.get("/api/v1/reservations", headers=world.auth(guest))
    assert "guest_name" not in own.json()["items"][0]


async def test_names_announced_again_reach_the_hosts_list(world: World) -> None:
    """Accounts registered before names were announced (no name in their registration) get one
    on the host's list once the identity context announces every name again, in batches."""
    identity = world.platform.services["identity"]
    earlier = await signed_up(world, "Jang Yuna")
    await world.settle()
    uow = world.platform.uow_factory("reservation")
    async with uow() as unit:  # as if registered before names were carried
        await unit.session.execute(delete(Guest))
        await unit.commit()
    booked = await book(world, earlier, 7)
    assert (await hosts_view(world))[booked].guest_name is None

    announced = await identity.announce_names(batch=1)
    assert announced >= 1
    await world.settle()
    assert (await hosts_view(world))[booked].guest_name == "Jang Yuna"
    assert await identity.announce_names() == announced  # again: the same, changing nothing
    await world.settle()
    assert (await hosts_view(world))[booked].guest_name == "Jang Yuna"

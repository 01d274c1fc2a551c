"""Idempotency-Key storage never keeps a credential, and a revoked token cannot read what was
stored under it (issue 11, item 2)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from haot.platform.idempotency import IdempotencyRecord
from tests.identity.helpers import API, PASSWORD, bearer, log_in, platform_of, register


async def stored_keys(client: httpx.AsyncClient) -> list[IdempotencyRecord]:
    platform = platform_of(client)
    async with platform.databases.sessions_for("identity")() as session:
        return list((await session.scalars(select(IdempotencyRecord))).all())


async def test_token_answers_are_marked_no_store_and_never_kept(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)
    body = {"email": account.email, "password": PASSWORD}
    key = {"Idempotency-Key": "login-1"}
    first = await app_client.post(f"{API}/auth/login", json=body, headers=key)
    again = await app_client.post(f"{API}/auth/login", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert "idempotent-replayed" not in again.headers  # run again, not replayed from storage
    assert again.json()["refresh_token"] != first.json()["refresh_token"]
    refreshed = await app_client.post(
        f"{API}/auth/refresh",
        json={"refresh_token": again.json()["refresh_token"]},
        headers={"Idempotency-Key": "refresh-1"},
    )
    assert refreshed.status_code == 200
    assert refreshed.headers["cache-control"] == "no-store"
    tokens = {first.json()["access_token"], again.json()["access_token"]}
    tokens |= {refreshed.json()["access_token"], refreshed.json()["refresh_token"]}
    for record in await stored_keys(app_client):
        kept = record.response_body or b""
        assert not any(token.encode() in kept for token in tokens)


async def test_a_revoked_token_cannot_replay_a_stored_answer(
    app_client: httpx.AsyncClient,
) -> None:
    account = await register(app_client)
    key = {"Idempotency-Key": "rename-1"}
    renamed = await app_client.patch(
        f"{API}/users/me", json={"name": "Lee Seojun"}, headers=account.headers | key
    )
    assert renamed.status_code == 200, renamed.text
    replayed = await app_client.patch(
        f"{API}/users/me", json={"name": "Lee Seojun"}, headers=account.headers | key
    )
    assert replayed.headers.get("idempotent-replayed") == "true"

    await asyncio.sleep(1.1)  # revocation stamps have a one-second grain
    fresh = (await log_in(app_client, account.email)).json()["access_token"]
    changed = await app_client.put(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another-long-passphrase"},
        headers=bearer(fresh),
    )
    assert changed.status_code == 204, changed.text
    after = await app_client.patch(
        f"{API}/users/me", json={"name": "Lee Seojun"}, headers=account.headers | key
    )
    assert after.status_code == 401, after.text
    assert "idempotent-replayed" not in after.headers

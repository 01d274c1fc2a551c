"""Access-token attacks over HTTP, revocation stamps, and the secret-strength rule."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError

from haot.platform.auth import Role
from haot.platform.clock import utcnow
from haot.platform.container import Platform
from haot.platform.ids import new_id
from haot.platform.settings import Settings
from tests.conftest import make_settings
from tests.identity.helpers import API, assert_problem, bearer, problem_mismatch, register

ADMIN_USERS = f"{API}/admin/users"
OTHER_SECRET = "another-secret-entirely-" + "y" * 40


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def admin_claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "ADMIN",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(settings: Settings, claims: dict[str, Any], *, secret: str | None = None) -> str:
    return jwt.encode(claims, secret or settings.jwt_secret, algorithm="HS256")


def unsigned(settings: Settings) -> str:
    header = _b64({"alg": "none", "typ": "JWT"})
    return f"{header}.{_b64(admin_claims(settings))}."


def tampered(settings: Settings) -> str:
    """A genuine USER token whose payload was edited to say ADMIN, signature kept."""
    header, _, signature = signed(settings, admin_claims(settings, role="USER")).split(".")
    return f"{header}.{_b64(admin_claims(settings))}.{signature}"


def other_algorithm(settings: Settings) -> str:
    """Signed with the real key, but with an algorithm the verifier does not accept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that the key is short for HS512: moot here
        return jwt.encode(admin_claims(settings), settings.jwt_secret, algorithm="HS512")


FORGERIES: dict[str, Callable[[Settings], str]] = {
    "alg_none": unsigned,
    "other_key": lambda s: signed(s, admin_claims(s), secret=OTHER_SECRET),
    "tampered_role": tampered,
    "hs512_not_pinned": other_algorithm,
    "expired": lambda s: signed(
        s, admin_claims(s, iat=int(time.time()) - 900, exp=int(time.time()) - 60)
    ),
    "wrong_issuer": lambda s: signed(s, admin_claims(s, iss="someone-else")),
    "issuer_prefix": lambda s: signed(s, admin_claims(s, iss=s.jwt_issuer[:-1])),
    "wrong_audience": lambda s: signed(s, admin_claims(s, aud="another-api")),
    "no_exp": lambda s: signed(s, admin_claims(s, exp=None)),
    "no_iat": lambda s: signed(s, admin_claims(s, iat=None)),
    "no_issuer": lambda s: signed(s, admin_claims(s, iss=None)),
    "no_audience": lambda s: signed(s, admin_claims(s, aud=None)),
    "no_subject": lambda s: signed(s, admin_claims(s, sub=None)),
    "no_role": lambda s: signed(s, admin_claims(s, role=None)),
    "unknown_role": lambda s: signed(s, admin_claims(s, role="ROOT")),
    "subject_not_uuid": lambda s: signed(s, admin_claims(s, sub="1")),
    "garbage": lambda s: "not.a.jwt",
}


async def test_a_well_formed_admin_token_is_accepted(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    # The control for the forgeries below: each differs from this token in one way only.
    response = await app_client.get(
        ADMIN_USERS, headers=bearer(signed(settings, admin_claims(settings)))
    )
    assert response.status_code == 200, response.text


async def test_forged_or_invalid_tokens_are_401(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    failures: dict[str, str] = {}
    for name, forge in FORGERIES.items():
        response = await app_client.get(ADMIN_USERS, headers=bearer(forge(settings)))
        if mismatch := problem_mismatch(response, 401, "invalid_token"):
            failures[name] = mismatch
        elif response.headers.get("www-authenticate") != "Bearer":
            failures[name] = "no WWW-Authenticate: Bearer"
    assert failures == {}


AUTHORIZATION_HEADERS = [
    "Basic a2ltOmNvcnJlY3QgaG9yc2U=",
    "Bearer",
    "Bearer ",
    "Token abc",
    "bearer-abc",
    "Digest x",
]


async def test_authorization_headers_other_than_bearer_are_401(
    app_client: httpx.AsyncClient,
) -> None:
    failures = {}
    for header in AUTHORIZATION_HEADERS:
        response = await app_client.get(f"{API}/users/me", headers={"Authorization": header})
        if mismatch := problem_mismatch(response, 401, "unauthorized"):
            failures[header] = mismatch
    assert failures == {}


async def test_missing_token_is_401(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(f"{API}/users/me")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_identity_headers_from_clients_are_ignored(app_client: httpx.AsyncClient) -> None:
    user = await register(app_client)
    spoofed = {**user.headers, "X-User-Id": str(uuid.uuid4()), "X-User-Role": "ADMIN"}

    assert (await app_client.get(f"{API}/users/me", headers=spoofed)).json()["id"] == user.id
    assert_problem(await app_client.get(ADMIN_USERS, headers=spoofed), 403, "forbidden")


async def test_issued_tokens_carry_the_pinned_claims(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await register(app_client)
    header = jwt.get_unverified_header(user.access_token)
    claims = jwt.decode(user.access_token, options={"verify_signature": False})

    assert header["alg"] == "HS256"
    assert claims["sub"] == user.id
    assert claims["role"] == "USER"
    assert (claims["iss"], claims["aud"]) == (settings.jwt_issuer, settings.jwt_audience)
    assert 0 < claims["exp"] - claims["iat"] <= 900


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, "가" * 10])
def test_settings_refuse_a_jwt_secret_shorter_than_32_bytes(secret: str) -> None:
    with pytest.raises(ValidationError, match="32 bytes"):
        make_settings("sqlite+aiosqlite:///:memory:", jwt_secret=secret)


def test_a_32_byte_secret_is_enough() -> None:
    assert make_settings("sqlite+aiosqlite:///:memory:", jwt_secret="가" * 11).jwt_secret


@pytest.mark.parametrize(("issued_us", "stamped_us"), [(600, 800), (100, 900), (999, 1001)])
async def test_a_token_issued_just_before_a_revocation_is_revoked(
    platform: Platform, issued_us: int, stamped_us: int
) -> None:
    # Revocation stamps are compared with the token's issue time; rounding both to milliseconds
    # let a token issued a fraction of a millisecond before the stamp survive it.
    user_id = new_id()
    base = utcnow().replace(microsecond=0)
    token = platform.signer.issue(user_id, Role.USER, now=base + timedelta(microseconds=issued_us))
    await platform.revocations.revoke_tokens_issued_before(
        user_id, base + timedelta(microseconds=stamped_us)
    )

    assert await platform.revocations.is_revoked(platform.signer.verify(token.token))


@pytest.mark.parametrize(("stamped_us", "issued_us"), [(600, 800), (999, 1001), (0, 1)])
async def test_a_token_issued_after_a_revocation_is_valid(
    platform: Platform, stamped_us: int, issued_us: int
) -> None:
    user_id = new_id()
    base = utcnow().replace(microsecond=0)
    await platform.revocations.revoke_tokens_issued_before(
        user_id, base + timedelta(microseconds=stamped_us)
    )
    token = platform.signer.issue(user_id, Role.USER, now=base + timedelta(microseconds=issued_us))

    assert not await platform.revocations.is_revoked(platform.signer.verify(token.token))

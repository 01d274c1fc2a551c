"""``TokenSigner`` checks its own tokens without PyJWT (a few µs instead of ~90 µs a request); that
fast check may only ever accept what PyJWT accepts, with the same claims, and must leave every
other verdict to PyJWT. Held to that differentially over generated tokens: well-formed ones with
every claim varied in value and type, foreign headers, wrong keys, and byte-level mutations."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import jwt
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from haot.platform.auth import Role, TokenSigner
from haot.platform.errors import InvalidToken

SECRET = "fast-check-secret-0123456789abcdefghijklmnop"
ISSUER, AUDIENCE = "haot", "haot-api"
signer = TokenSigner(SECRET, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=900)


def pyjwt_verdict(token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            leeway=5,
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return claims


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict[str, Any], claims: dict[str, Any], key: str) -> str:
    """A JWS by hand: PyJWT's encoder refuses claims of the wrong type, which are the point."""
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}.get(header["alg"])
    if digest is None:  # alg none
        return signing_input + "."
    return f"{signing_input}.{b64(hmac.new(key.encode(), signing_input.encode(), digest).digest())}"


def offsets() -> st.SearchStrategy[Any]:
    """A claim value around now (seconds), or something that is no timestamp at all."""
    return st.one_of(
        st.integers(-2000, 2000),
        st.integers(-2000, 2000),
        st.integers(-2000, 2000),
        st.floats(-2000, 2000, allow_nan=False),
        st.sampled_from([-6, -5, -4, 4, 5, 6, 0]),
        st.just("str"),
        st.just(None),
        st.just(True),
        st.just([1]),
    )


def as_time(offset: Any, now: float) -> Any:
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        return offset
    return int(now + offset) if isinstance(offset, int) else now + offset


claims_strategy = st.fixed_dictionaries(
    {
        "exp": offsets(),
        "iat": offsets(),
        # Mostly right, so that a fair share of tokens is accepted and the verdicts compared.
        "sub": st.sampled_from([str(uuid.uuid4())] * 4 + [123, None]),
        "role": st.sampled_from(["USER", "ADMIN", "nobody"]),
        "iss": st.sampled_from([ISSUER] * 6 + ["other", None, [ISSUER]]),
        "aud": st.sampled_from([AUDIENCE] * 6 + ["other", [AUDIENCE], [AUDIENCE, "x"], None, 7]),
    },
    optional={
        "jti": st.sampled_from([str(uuid.uuid4()), 5]),
        "nbf": offsets(),
        "extra": st.text(max_size=5),
    },
)


@st.composite
def tokens(draw: st.DrawFn) -> str:
    now = time.time()
    claims = draw(claims_strategy)
    for name in ("exp", "iat", "nbf"):
        if name in claims:
            claims[name] = as_time(claims[name], now)
    claims = {k: v for k, v in claims.items() if v is not None or draw(st.booleans())}
    key = draw(st.sampled_from([SECRET] * 4 + [SECRET + "x", "another-secret-of-enough-length-0"]))
    header = draw(
        st.sampled_from(
            [
                None,  # PyJWT's own
                None,
                None,
                None,
                {"typ": "JWT", "alg": "HS256"},  # same header, other order
                {"alg": "HS256"},
                {"alg": "HS256", "typ": "JWT", "kid": "k1"},
                {"alg": "none", "typ": "JWT"},
                {"alg": "HS512", "typ": "JWT"},
            ]
        )
    )
    token = sign(header or {"alg": "HS256", "typ": "JWT"}, claims, key)
    mutation = draw(st.sampled_from(["none"] * 8 + ["flip", "pad", "drop", "append", "case"]))
    if mutation == "flip":
        index = int(draw(st.floats(0, 1, exclude_max=True)) * len(token))
        replacement = draw(st.sampled_from("AZaz09-_.=+/ "))
        token = token[:index] + replacement + token[index + 1 :]
    elif mutation == "pad":
        token += "="
    elif mutation == "drop":
        token = token[:-1]
    elif mutation == "append":
        token += ".x"
    elif mutation == "case":
        token = token.swapcase()
    return token


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_the_fast_check_accepts_only_what_pyjwt_accepts(token: str) -> None:
    fast = signer._verify_own(token)
    reference = pyjwt_verdict(token)
    event(f"fast check {'accepted' if fast is not None else 'deferred'}")
    if fast is not None:
        assert reference == fast
    if reference is None:
        with pytest.raises(InvalidToken):
            signer.verify(token)


def test_tokens_it_issues_take_the_fast_check() -> None:
    """Not only never wrong but also used: otherwise the differential test passes vacuously."""
    token = signer.issue(uuid.uuid4(), Role.USER).token
    claims = signer._verify_own(token)
    assert claims is not None
    assert claims == pyjwt_verdict(token)


def test_expiry_and_issue_time_windows_match_pyjwt_at_their_edges() -> None:
    now = time.time()
    for exp_offset in (-6, -5, -4, 0, 1):
        for iat_offset in (-1, 4, 5, 6, 7):
            claims = {
                "sub": str(uuid.uuid4()),
                "role": "USER",
                "iss": ISSUER,
                "aud": AUDIENCE,
                "exp": int(now + exp_offset),
                "iat": round(now + iat_offset, 6),
            }
            token = jwt.encode(claims, SECRET, algorithm="HS256")
            fast, reference = signer._verify_own(token), pyjwt_verdict(token)
            assert fast is None or fast == reference, (exp_offset, iat_offset)
            assert (fast is None) == (reference is None) or fast is None

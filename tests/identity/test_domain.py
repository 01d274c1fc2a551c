"""Pure identity rules: password policy, email normalisation, refresh-token digests."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haot.identity.domain import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    digest_refresh_token,
    new_refresh_token,
    normalize_email,
    password_problem,
)

EMAIL = "kimminji@example.com"
NAME = "Kim Minji"


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 10"),
        ("short", "at least 10"),
        ("abcdefghi", "at least 10"),
        ("x" * (MAX_PASSWORD_LENGTH + 1), "at most 128"),
        ("aaaaaaaaaa", "repetitive"),
        ("abababababab", "repetitive"),
        ("abcabcabcabc", "repetitive"),
        ("kimminji2024!", "email or name"),
        ("xx-KIMMINJI-xx", "email or name"),
    ],
)
def test_unacceptable_passwords_say_why(password: str, problem: str) -> None:
    reason = password_problem(password, email=EMAIL, name=NAME)
    assert reason is not None
    assert problem in reason


@pytest.mark.parametrize(
    "password",
    [
        "abcdabcdab",
        "correct horse battery",
        "x" * (MAX_PASSWORD_LENGTH - 4) + "abcd",
        "비밀번호는길어야합니다",
        "Tr0ub4dor&3",
    ],
)
def test_acceptable_passwords_pass(password: str) -> None:
    assert password_problem(password, email=EMAIL, name=NAME) is None


def test_password_equal_to_the_name_is_refused_whatever_the_case() -> None:
    assert password_problem("minji park kim", name="Minji Park Kim") is not None
    assert password_problem("MINJI PARK KIM", name="Minji Park Kim") is not None


def test_short_email_local_parts_do_not_forbid_common_substrings() -> None:
    # "kim" is too short to be a meaningful hint; refusing it would refuse half of Korea.
    assert password_problem("kim-loves-hiking", email="kim@example.com") is None


@pytest.mark.parametrize("length", [MIN_PASSWORD_LENGTH - 1, MIN_PASSWORD_LENGTH])
def test_length_boundary(length: int) -> None:
    password = ("abcd" * 40)[:length]
    assert (password_problem(password) is None) is (length >= MIN_PASSWORD_LENGTH)


@given(st.text(min_size=MIN_PASSWORD_LENGTH, max_size=MAX_PASSWORD_LENGTH))
def test_any_long_varied_password_is_accepted_without_account_hints(password: str) -> None:
    if len(set(password)) >= 4:
        assert password_problem(password) is None
    else:
        assert password_problem(password) is not None


@given(st.text(max_size=MIN_PASSWORD_LENGTH - 1))
def test_every_short_password_is_refused(password: str) -> None:
    assert password_problem(password) is not None


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Kim@Example.com", "kim@example.com"),
        ("  kim@example.com\t", "kim@example.com"),
        ("KIM@EXAMPLE.COM", "kim@example.com"),
        ("kim@example.com", "kim@example.com"),
    ],
)
def test_emails_are_compared_trimmed_and_lowercased(raw: str, normalised: str) -> None:
    assert normalize_email(raw) == normalised


@given(st.emails())
def test_normalising_an_email_is_idempotent(email: str) -> None:
    once = normalize_email(email)
    assert normalize_email(once) == once
    assert normalize_email(email.upper()) == normalize_email(email.lower())


def test_refresh_digest_is_sha256_hex() -> None:
    assert digest_refresh_token("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@given(st.text(), st.text())
def test_refresh_digests_are_deterministic_and_distinct(a: str, b: str) -> None:
    assert digest_refresh_token(a) == hashlib.sha256(a.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest_refresh_token(a))
    assert (digest_refresh_token(a) == digest_refresh_token(b)) is (a == b)


def test_refresh_tokens_are_unguessable_and_fit_the_request_schema() -> None:
    tokens = {new_refresh_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        # 32 random bytes, URL-safe base64 without padding.
        assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token)
        assert digest_refresh_token(token) != token

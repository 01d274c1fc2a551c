"""Every failure answers RFC 9457 problem+json with a stable ``code``; garbage never makes a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.platform.conftest import (
    SECRET_IN_EXCEPTION,
    ClientFactory,
    assert_problem,
    one_backend,
)

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"


@one_backend
async def test_unknown_route_is_404_problem(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.get("/api/v1/no/such/thing")
    body = assert_problem(response, 404, "not_found")
    assert body["instance"] == "/api/v1/no/such/thing"
    assert body["type"] == "https://haot.dev/problems/not-found"


@one_backend
async def test_wrong_method_is_405_problem(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.delete(SIGNUP)
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


@one_backend
async def test_malformed_json_is_422_with_errors(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        SIGNUP, content=b'{"email": "a@b.co", ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"]
    assert body["errors"][0]["type"] == "json_invalid"
    assert {"loc", "message", "type"} <= body["errors"][0].keys()


@one_backend
async def test_invalid_fields_are_listed_without_echoing_input(
    probe_client: httpx.AsyncClient,
) -> None:
    password = "Echo-Me-Not-12345"
    response = await probe_client.post(
        SIGNUP,
        json={"email": "not-an-email", "password": password, "name": "", "role": "ADMIN"},
    )
    body = assert_problem(response, 422, "validation_error")
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert ("body", "email") in locations
    assert ("body", "name") in locations
    assert ("body", "role") in locations  # unknown fields are refused (no mass assignment)
    assert password not in response.text


@one_backend
async def test_invalid_fields_carry_their_limits_but_never_the_input(
    probe_client: httpx.AsyncClient,
) -> None:
    """``ctx``: the limits a client needs to word a refusal in its own language (the pages do),
    plain numbers and strings only; the refused values themselves never come back."""
    secret = "Echo-Me-Not-" + "x" * 200
    response = await probe_client.post(
        SIGNUP,
        json={
            "email": "a@b.co",
            "password": secret,
            "name": "N" * 101,
            "phone": "call-me-maybe",
            "birth_date": "1899-12-31",
            "gender": "NOT-SAID",
        },
    )
    body = assert_problem(response, 422, "validation_error")
    by_field = {error["loc"][-1]: error for error in body["errors"]}
    assert by_field["password"]["ctx"] == {"max_length": 128}
    assert by_field["name"]["ctx"] == {"max_length": 100}
    assert by_field["name"]["message"] == "String should have at most 100 characters"
    assert by_field["phone"]["type"] == "string_pattern_mismatch"
    assert by_field["phone"]["ctx"] == {"pattern": r"^\+?[0-9][0-9 \-]{6,30}$"}
    assert by_field["birth_date"]["ctx"] == {"ge": "1900-01-01"}  # a date limit, in ISO 8601
    assert "ctx" not in by_field["gender"]  # an enum's choices are no limit
    for error in body["errors"]:
        assert set(error) <= {"loc", "message", "type", "ctx"}
        assert all(isinstance(v, int | float | str) for v in error.get("ctx", {}).values())
    for typed in (secret, "N" * 101, "call-me-maybe", "1899-12-31", "NOT-SAID"):
        assert typed not in response.text


@one_backend
async def test_haot_error_maps_to_its_status_code_headers_and_extra(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.get("/probe/teapot")
    body = assert_problem(response, 418, "teapot_refused")
    assert body["title"] == "I refuse to brew coffee"
    assert body["detail"] == "short and stout"
    assert body["brew"] == "earl grey"
    assert body["type"] == "https://haot.dev/problems/teapot-refused"
    assert response.headers["x-brew"] == "tea"


@one_backend
async def test_unexpected_exception_is_a_bare_500(probe_client: httpx.AsyncClient) -> None:
    """Served through a transport that re-raises app exceptions: the request must still get an
    answer (no exception escapes the app), and nothing of the exception is in it."""
    response = await probe_client.get("/probe/crash", headers={"x-request-id": "crash-1"})
    body = assert_problem(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "crash-1"
    assert SECRET_IN_EXCEPTION not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "code", "instance"}


async def test_database_errors_are_500_unless_the_value_was_refused(
    probe_client: httpx.AsyncClient, backend: str
) -> None:
    broken = await probe_client.get("/probe/sql", params={"statement": "missing_table"})
    assert_problem(broken, 500, "internal_error")
    assert "no_such_table_here" not in broken.text
    assert "SELECT" not in broken.text

    refused = await probe_client.get("/probe/sql", params={"statement": "cast", "value": "x1"})
    if backend == "postgres":  # 22P02 invalid_text_representation: the input's fault
        body = assert_problem(refused, 422, "validation_error")
        assert "x1" not in body["detail"]
        assert "CAST" not in refused.text
    else:  # SQLite casts anything
        assert refused.status_code == 200


async def test_rate_limited_login_is_429_with_retry_after(
    make_probe_client: ClientFactory,
) -> None:
    async with make_probe_client(login_rate_per_minute=2) as client:
        answers = [
            await client.post(LOGIN, json={"email": "nobody@example.com", "password": "wrong-pw"})
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert_problem(answers[0], 401, "invalid_credentials")
    assert_problem(answers[2], 429, "rate_limited")
    assert int(answers[2].headers["retry-after"]) >= 1


PW = "Garbage-Pass-0987"


def near_valid(n: int, **fields: object) -> bytes:
    """A signup body that passes the schema except for what ``fields`` (raw JSON text) break."""
    body = {"email": f'"fuzz{n}@example.com"', "password": f'"{PW}"', "name": '"Fuzz"'}
    body.update({key: str(value) for key, value in fields.items()})
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in body.items()) + "}").encode()


GARBAGE_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b'""',
    b"0",
    b"-1e999999",
    b"1" * 5000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"\xff\xfe\xfd",
    b'{"email": "a@b.co", "password": "x", "name": "x"',
    b"NaN",
    b'{"email": NaN, "password": Infinity, "name": -Infinity}',
    b'{"email": ["a@example.com"], "password": {"$ne": null}, "name": 1}',
    near_valid(1, email="9" * 5000),
    near_valid(2).replace(b"fuzz2@", b"\xff@"),  # not UTF-8
    near_valid(3, name='"\\u0000"'),
    near_valid(4, name='"nul\\u0000in the middle"'),
    near_valid(5, password='"Garbage-\\u0000-Pass-0987"'),
    near_valid(6, name='"\\ud800"'),
    near_valid(7, password='"\\udfff\\ud800Garbage-Pass"'),
    near_valid(8, email='"\\ud800@example.com"'),
    near_valid(9, email='"a\\u0000@example.com"'),
    near_valid(10, phone='"\\u0000"'),
    near_valid(11, phone='"+82 10 1234 5678\\u0000"'),
    near_valid(12, birth_date='"99999-01-01"'),
    near_valid(13, birth_date="1e308"),
    near_valid(14, birth_date='"0001-01-01"'),
    near_valid(15, birth_date='"9999-12-31"'),
    near_valid(16, gender='["MALE"]'),
    near_valid(17, host='"maybe"'),
    near_valid(18, role='"ADMIN"'),
    near_valid(19, email='"' + "a" * 300 + '@example.com"'),
    near_valid(20, password='"' + "p" * 10_000 + '"'),
    near_valid(21, email='"a@' + "x" * 70 + '.com"'),
    near_valid(22, email='"\u00e9\u00e8@\u00e9xample.com"'),
    near_valid(23, name='"' + "\U0001f600" * 100 + '"'),
    near_valid(24, name='"' + "\U0001f600" * 101 + '"'),
    near_valid(25, name='"' + "x" * 100_000 + '"'),
    near_valid(26, name='"\\u202e\\u0000\\ufeff"'),
    near_valid(27, email='"fuzz27@example.com", "email": "other@example.com"'),
    near_valid(28, phone="12345678901234567890123"),
    near_valid(29, host="1e400"),
    near_valid(30, birth_date='"2024-02-30"'),
]


@pytest.mark.parametrize("path", [SIGNUP, LOGIN])
async def test_garbage_bodies_never_make_a_500(probe_client: httpx.AsyncClient, path: str) -> None:
    for body in GARBAGE_BODIES:
        for content_type in ("application/json", "text/plain"):
            response = await probe_client.post(
                path, content=body, headers={"content-type": content_type}
            )
            assert response.status_code < 500, (body[:200], response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", body[:200]
                assert response.json()["code"], body[:200]


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
_json = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_fields = st.sampled_from(
    ["email", "password", "name", "phone", "birth_date", "gender", "host", "role", "id"]
)
_signup_like = st.dictionaries(
    _fields,
    _json | st.emails() | st.text(max_size=200) | st.just(PW) | st.dates().map(str),
    max_size=8,
)


@settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.one_of(_json, _signup_like).map(
        lambda value: json.dumps(value, ensure_ascii=False, allow_nan=True).encode(
            "utf-8", "replace"
        )
    )
    | st.binary(max_size=300)
)
async def test_fuzzed_signup_and_login_never_make_a_500(
    probe_client: httpx.AsyncClient, payload: bytes
) -> None:
    for path in (SIGNUP, LOGIN):
        response = await probe_client.post(
            path, content=payload, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (path, payload[:300], response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"

"""Malformed or impossible search parameters answer problem+json 422."""

from __future__ import annotations

from typing import Any

import httpx

from tests.lodging.factories import (
    PROBLEM_JSON,
    assert_problem,
    create_listing,
    day,
    search,
    search_ok,
)

INVALID_STAYS: list[tuple[str, dict[str, Any]]] = [
    ("check_in in the past", {"check_in": day(-1), "check_out": day(2)}),
    ("check_out equals check_in", {"check_in": day(3), "check_out": day(3)}),
    ("check_out before check_in", {"check_in": day(5), "check_out": day(3)}),
    ("stay over 30 nights", {"check_in": day(1), "check_out": day(32)}),
    ("absurd stay", {"check_in": day(1), "check_out": day(3000)}),
    ("only check_in", {"check_in": day(3)}),
    ("only check_out", {"check_out": day(3)}),
]

INVALID_PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("guests zero", {"guests": 0}),
    ("guests negative", {"guests": -2}),
    ("guests not a number", {"guests": "two"}),
    ("min_price over max_price", {"min_price": 200_000, "max_price": 100_000}),
    ("negative min_price", {"min_price": -1}),
    ("unknown sort", {"sort": "cheapest"}),
    ("sql in sort", {"sort": "price; DROP TABLE lodging_lodgings"}),
    ("size over 100", {"size": 101}),
    ("size zero", {"size": 0}),
    ("page zero", {"page": 0}),
    ("page not a number", {"page": "x"}),
]

MALFORMED_DATES: list[tuple[str, dict[str, Any]]] = [
    ("impossible date", {"check_in": "2031-02-30", "check_out": "2031-03-02"}),
    ("not a date", {"check_in": "tomorrow", "check_out": "2031-03-02"}),
]


async def _wrong_answers(
    client: httpx.AsyncClient, cases: list[tuple[str, dict[str, Any]]], codes: set[str]
) -> list[tuple[str, int, str]]:
    wrong = []
    for name, params in cases:
        response = await search(client, **params)
        body = response.json()
        ok = (
            response.status_code == 422
            and response.headers["content-type"].startswith(PROBLEM_JSON)
            and body.get("status") == 422
            and body.get("code") in codes
        )
        if not ok:
            wrong.append((name, response.status_code, response.text[:200]))
    return wrong


async def test_invalid_search_parameters_are_422(app_client: httpx.AsyncClient) -> None:
    stays = [(name, {"guests": 2, **params}) for name, params in INVALID_STAYS]
    assert await _wrong_answers(app_client, stays, {"invalid_stay"}) == []
    assert await _wrong_answers(app_client, INVALID_PARAMS, {"validation_error"}) == []
    malformed = {"validation_error", "invalid_stay"}
    assert await _wrong_answers(app_client, MALFORMED_DATES, malformed) == []
    # One answer in full.
    assert_problem(await search(app_client, check_in=day(4), check_out=day(2)), 422, "invalid_stay")


async def test_boundaries_that_are_allowed(app_client: httpx.AsyncClient, host: Any) -> None:
    listing = await create_listing(app_client, host, start=day(0), end=day(31))
    today = await search_ok(app_client, check_in=day(0), check_out=day(1), guests=1)
    assert [i["id"] for i in today["items"]] == [listing.id]
    thirty = await search_ok(app_client, check_in=day(1), check_out=day(31), guests=1)
    assert [i["id"] for i in thirty["items"]] == [listing.id]
    assert thirty["items"][0]["total_price"] == 30 * 100_000
    equal = await search_ok(app_client, min_price=100_000, max_price=100_000)
    assert [i["id"] for i in equal["items"]] == [listing.id]
    assert (await search_ok(app_client, size=100))["size"] == 100

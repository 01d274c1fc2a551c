"""The API's refusals worded again for the pages (``haot.web.refusals``): every pydantic type the
pages map, with its limits, in Korean and English; our validators' and rules' messages, as the
contexts really word them; the domain refusals by their code; and whatever the pages do not know
shown as the API words it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from haot.coupon.domain import DiscountType, Terms, inapplicable_because
from haot.coupon.schemas import CouponCreate, EventCreate
from haot.identity.domain import password_problem
from haot.identity.schemas import SignUp, UserUpdate
from haot.lodging.domain import stay_problem
from haot.lodging.schemas import CalendarUpdate, LodgingCreate
from haot.platform.clock import seoul_today
from haot.review.schemas import Moderation, ReviewUpdate
from haot.web.api_client import ApiProblem
from haot.web.refusals import (
    BY_CODE,
    BY_LIMIT,
    BY_TYPE,
    field_message,
    known_message,
    refusal_message,
)


def error(kind: str, message: str = "as the API words it", **ctx: Any) -> dict[str, Any]:
    shaped: dict[str, Any] = {"loc": ["body", "field"], "message": message, "type": kind}
    if ctx:
        shaped["ctx"] = ctx
    return shaped


# (type, ctx, English, Korean): every type the pages word again.
TYPES: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing", {}, "Fill in this field.", "이 항목을 입력해 주세요."),
    ("string_too_short", {"min_length": 1}, "Fill in this field.", "이 항목을 입력해 주세요."),
    (
        "string_too_short",
        {"min_length": 8},
        "Enter at least 8 characters.",
        "8자 이상 입력해 주세요.",
    ),
    (
        "string_too_long",
        {"max_length": 100},
        "Enter at most 100 characters.",
        "100자 이하로 입력해 주세요.",
    ),
    ("too_short", {"min_length": 1}, "Fill in this field.", "이 항목을 입력해 주세요."),
    ("too_short", {"min_length": 2}, "Give at least 2 entries.", "2개 이상 입력해 주세요."),
    ("too_long", {"max_length": 10}, "Give at most 10 entries.", "10개 이하로 입력해 주세요."),
    ("greater_than_equal", {"ge": 1}, "Enter 1 or more.", "1 이상을 입력해 주세요."),
    ("greater_than", {"gt": 0}, "Enter more than 0.", "0보다 큰 값을 입력해 주세요."),
    (
        "less_than_equal",
        {"le": 100_000_000},
        "Enter 100,000,000 or less.",
        "100,000,000 이하를 입력해 주세요.",
    ),
    ("less_than_equal", {"le": 180.0}, "Enter 180 or less.", "180 이하를 입력해 주세요."),
    ("less_than", {"lt": 5}, "Enter less than 5.", "5보다 작은 값을 입력해 주세요."),
    (
        "greater_than_equal",
        {"ge": "1900-01-01"},
        "Enter Jan 1, 1900 or later.",
        "1900. 1. 1. 또는 그 이후 날짜를 입력해 주세요.",
    ),
    (
        "greater_than",
        {"gt": "2026-12-01"},
        "Enter a date after Dec 1, 2026.",
        "2026. 12. 1.보다 뒤의 날짜를 입력해 주세요.",
    ),
    (
        "less_than_equal",
        {"le": "2026-12-01"},
        "Enter Dec 1, 2026 or earlier.",
        "2026. 12. 1. 또는 그 이전 날짜를 입력해 주세요.",
    ),
    (
        "less_than",
        {"lt": "2026-12-01"},
        "Enter a date before Dec 1, 2026.",
        "2026. 12. 1.보다 앞의 날짜를 입력해 주세요.",
    ),
    ("int_parsing", {}, "Enter a whole number.", "정수를 입력해 주세요."),
    ("int_parsing_size", {}, "Enter a whole number.", "정수를 입력해 주세요."),
    ("int_type", {}, "Enter a whole number.", "정수를 입력해 주세요."),
    ("int_from_float", {}, "Enter a whole number.", "정수를 입력해 주세요."),
    ("float_parsing", {}, "Enter a number.", "숫자를 입력해 주세요."),
    ("float_type", {}, "Enter a number.", "숫자를 입력해 주세요."),
    ("finite_number", {}, "Enter a number.", "숫자를 입력해 주세요."),
    ("bool_parsing", {}, "Choose yes or no.", "예 또는 아니요를 골라 주세요."),
    ("bool_type", {}, "Choose yes or no.", "예 또는 아니요를 골라 주세요."),
    ("date_parsing", {}, "Enter a date (YYYY-MM-DD).", "날짜를 입력해 주세요 (YYYY-MM-DD)."),
    (
        "date_from_datetime_parsing",
        {},
        "Enter a date (YYYY-MM-DD).",
        "날짜를 입력해 주세요 (YYYY-MM-DD).",
    ),
    (
        "date_from_datetime_inexact",
        {},
        "Enter a date (YYYY-MM-DD).",
        "날짜를 입력해 주세요 (YYYY-MM-DD).",
    ),
    ("date_type", {}, "Enter a date (YYYY-MM-DD).", "날짜를 입력해 주세요 (YYYY-MM-DD)."),
    ("datetime_parsing", {}, "Enter a date and a time.", "날짜와 시간을 입력해 주세요."),
    ("datetime_from_date_parsing", {}, "Enter a date and a time.", "날짜와 시간을 입력해 주세요."),
    ("datetime_object_invalid", {}, "Enter a date and a time.", "날짜와 시간을 입력해 주세요."),
    ("datetime_type", {}, "Enter a date and a time.", "날짜와 시간을 입력해 주세요."),
    ("timezone_aware", {}, "Enter a date and a time.", "날짜와 시간을 입력해 주세요."),
    ("time_parsing", {}, "Enter a time (HH:MM).", "시간을 입력해 주세요 (HH:MM)."),
    ("time_type", {}, "Enter a time (HH:MM).", "시간을 입력해 주세요 (HH:MM)."),
    ("uuid_parsing", {}, "This is not a valid ID.", "올바른 ID가 아닙니다."),
    ("uuid_type", {}, "This is not a valid ID.", "올바른 ID가 아닙니다."),
    ("uuid_version", {}, "This is not a valid ID.", "올바른 ID가 아닙니다."),
    ("enum", {}, "Choose one of the options.", "보기 중에서 하나를 골라 주세요."),
    ("literal_error", {}, "Choose one of the options.", "보기 중에서 하나를 골라 주세요."),
    ("string_type", {}, "This value is not valid.", "올바른 값이 아닙니다."),
    ("list_type", {}, "This value is not valid.", "올바른 값이 아닙니다."),
    ("dict_type", {}, "This value is not valid.", "올바른 값이 아닙니다."),
    ("model_type", {}, "This value is not valid.", "올바른 값이 아닙니다."),
    ("model_attributes_type", {}, "This value is not valid.", "올바른 값이 아닙니다."),
    ("extra_forbidden", {}, "This field is not expected.", "받을 수 없는 항목입니다."),
    (
        "json_invalid",
        {},
        "The form could not be read. Send it again.",
        "양식을 읽을 수 없습니다. 다시 보내 주세요.",
    ),
    (
        "json_type",
        {},
        "The form could not be read. Send it again.",
        "양식을 읽을 수 없습니다. 다시 보내 주세요.",
    ),
    (
        "string_pattern_mismatch",
        {"pattern": r"^https?://\S{1,2000}$"},
        "Enter a link that starts with http:// or https://.",
        "http:// 또는 https://로 시작하는 링크를 입력해 주세요.",
    ),
    (
        "string_pattern_mismatch",
        {"pattern": r"^\+?[0-9][0-9 \-]{6,30}$"},
        "The format is not right.",
        "형식이 올바르지 않습니다.",
    ),
]


@pytest.mark.parametrize(("kind", "ctx", "english", "korean"), TYPES)
def test_a_field_error_is_worded_by_its_type_and_limits(
    kind: str, ctx: dict[str, Any], english: str, korean: str
) -> None:
    assert field_message(error(kind, **ctx), "en") == english
    assert field_message(error(kind, **ctx), "ko") == korean


def test_every_mapped_type_is_in_the_table() -> None:
    """The table above covers every type the module maps: a type added there is tested here."""
    tested = {kind for kind, *_ in TYPES}
    assert set(BY_TYPE) | {kind for kind, _ in BY_LIMIT} <= tested


def test_a_limited_type_without_its_limit_is_the_apis_message() -> None:
    # ``ctx`` absent (an older API): nothing to fill the limit in with.
    assert field_message(error("string_too_short", "At least 8"), "ko") == "At least 8"


def test_an_unknown_type_or_validator_message_is_the_apis_message() -> None:
    for language in ("ko", "en"):
        assert field_message(error("url_parsing", "Input should be a URL"), language) == (
            "Input should be a URL"
        )
        assert field_message(error("value_error", "Value error, not today"), language) == (
            "Value error, not today"
        )


def test_a_known_validator_message_is_translated() -> None:
    future = error("value_error", "Value error, birth_date cannot be in the future")
    assert field_message(future, "ko") == "생년월일은 미래의 날짜일 수 없습니다."
    assert field_message(future, "en") == "The birth date cannot be in the future."
    email = error("value_error", "value is not a valid email address: It must have an @-sign.")
    assert field_message(email, "ko") == "올바른 이메일 주소를 입력해 주세요."


def test_a_rules_message_keeps_its_numbers_and_dates() -> None:
    assert known_message("Password must be at least 10 characters", "ko") == (
        "10자 이상 입력해 주세요."
    )
    assert known_message("2026-12-05 needs a stay of 2 to 30 nights", "en") == (
        "A stay that includes Dec 5, 2026 must be 2 to 30 nights."
    )
    assert known_message("the order must be at least 50000 KRW", "ko") == (
        "50,000원 이상 주문해야 쓸 수 있는 쿠폰입니다."
    )
    assert known_message("job 'expire-holds' has no dry-run mode", "ko") == (
        "이 작업은 시험 실행을 할 수 없습니다."
    )


@pytest.mark.parametrize("code", sorted(BY_CODE))
def test_a_refusal_is_worded_by_its_code(code: str) -> None:
    english = refusal_message(code, "some words of the API", "en")
    korean = refusal_message(code, "some words of the API", "ko")
    assert english == BY_CODE[code]
    assert korean != english
    assert any("\uac00" <= letter <= "\ud7a3" for letter in korean)  # Hangul


def test_a_known_detail_says_more_than_its_code() -> None:
    assert refusal_message("invalid_stay", "a stay is at most 30 nights", "ko") == (
        "최대 30박까지 예약할 수 있습니다."
    )
    assert refusal_message("sold_out", "2026-12-05 is sold out", "ko") == (
        "일부 날짜가 매진되었습니다. 다른 날짜를 골라 주세요."
    )


def test_an_unknown_code_is_the_apis_detail() -> None:
    assert refusal_message("brand_new", "Something new", "ko") == "Something new"
    assert refusal_message("brand_new", "", "ko") == "brand_new"
    assert refusal_message("validation_error", "job x is odd", "ko") == "job x is odd"


def test_the_problem_words_its_errors_in_the_visitors_language() -> None:
    problem = ApiProblem(
        status=422,
        code="validation_error",
        detail="body.name: Field required",
        errors=[{"loc": ["body", "name"], "message": "Field required", "type": "missing"}],
        language="ko",
    )
    assert problem.field_errors() == {"name": "이 항목을 입력해 주세요."}
    assert problem.detail == "body.name: Field required"  # as the API words it, for the pages
    refusal = ApiProblem(status=409, code="sold_out", detail="2026-12-05 is sold out")
    assert refusal.message() == "Some nights of the stay are sold out. Choose other dates."


def validator_messages(model: type[BaseModel], body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    return [
        str(found["msg"])
        for found in refused.value.errors()
        if found["type"] in ("value_error", "assertion_error")
    ]


def our_messages() -> list[str]:
    """The messages our validators and rules really give (not copies of them)."""
    today = seoul_today()
    now = datetime.now(UTC)
    later = (now + timedelta(days=1)).isoformat()
    lodging: dict[str, Any] = {
        "name": "n",
        "address": "a",
        "region": {"city": "c", "district": "d"},
        "latitude": 1,
        "longitude": 1,
    }
    terms = Terms(
        discount_type=DiscountType.FIXED,
        discount_value=1000,
        max_discount=None,
        min_order_amount=50_000,
        valid_from=now - timedelta(days=1),
        valid_to=now + timedelta(days=1),
        lodging_id=None,
    )
    messages = [
        password_problem("short"),
        password_problem("x" * 200),
        password_problem("abababababab"),
        password_problem("kimguest-secret", email="kimguest@example.com"),
        stay_problem(today - timedelta(days=1), today, today=today),
        stay_problem(today, today, today=today),
        stay_problem(today, today + timedelta(days=31), today=today),
        inapplicable_because(
            terms, order_amount=1000, lodging_id=uuid.uuid4(), now=now - timedelta(days=2)
        ),
        inapplicable_because(
            terms, order_amount=1000, lodging_id=uuid.uuid4(), now=now + timedelta(days=2)
        ),
        inapplicable_because(terms, order_amount=1000, lodging_id=uuid.uuid4(), now=now),
        inapplicable_because(
            replace(terms, lodging_id=uuid.uuid4()),
            order_amount=90_000,
            lodging_id=uuid.uuid4(),
            now=now,
        ),
    ]
    base = {"email": "a@b.co", "password": "p", "name": "n"}
    messages += validator_messages(SignUp, base | {"birth_date": "2999-01-01"})
    messages += validator_messages(SignUp, base | {"email": "nobody"})
    messages += validator_messages(UserUpdate, {"name": None})
    tiers = [{"days_before": 1, "refund_percent": 1}, {"days_before": 1, "refund_percent": 2}]
    messages += validator_messages(LodgingCreate, lodging | {"cancellation_policy": tiers})
    messages += validator_messages(CalendarUpdate, {"start": "2099-01-02", "end": "2099-01-01"})
    messages += validator_messages(CalendarUpdate, {"start": "2099-01-01", "end": "2100-06-01"})
    messages += validator_messages(
        CalendarUpdate, {"start": "2099-01-01", "end": "2099-01-05", "min_stay": 5, "max_stay": 2}
    )
    coupon: dict[str, Any] = {
        "name": "c",
        "discount_type": "FIXED",
        "discount_value": 1000,
        "valid_from": now.isoformat(),
        "valid_to": later,
    }
    messages += validator_messages(CouponCreate, coupon | {"valid_to": now.isoformat()})
    messages += validator_messages(
        CouponCreate, coupon | {"discount_type": "PERCENT", "discount_value": 150}
    )
    messages += validator_messages(CouponCreate, coupon | {"max_discount": 10})
    messages += validator_messages(
        EventCreate, {"coupon_id": str(uuid.uuid4()), "starts_at": later, "ends_at": later}
    )
    messages += validator_messages(ReviewUpdate, {"rating": None})
    messages += validator_messages(ReviewUpdate, {})
    messages += validator_messages(Moderation, {"hidden": True, "reason": ""})
    return [message for message in messages if message]


def test_every_message_of_our_validators_and_rules_is_known() -> None:
    """A validator or rule reworded in its context fails here, not silently in English."""
    messages = our_messages()
    assert len(messages) >= 25
    unknown = [message for message in messages if known_message(message, "ko") is None]
    assert not unknown, unknown

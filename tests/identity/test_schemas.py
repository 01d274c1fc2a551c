"""Input shapes: explicit fields only (no mass assignment) and sane values."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from haot.identity.schemas import AdminUserUpdate, LogIn, SignUp, UserUpdate
from haot.platform.auth import Role
from haot.platform.clock import seoul_today

SIGN_UP = {"email": "kim@example.com", "password": "correct horse battery", "name": "Kim"}


@pytest.mark.parametrize(
    "extra",
    [
        {"role": "ADMIN"},
        {"active": False},
        {"id": "0192f0c4-0000-7000-8000-000000000000"},
        {"password_hash": "$argon2id$..."},
        {"created_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_sign_up_refuses_fields_a_client_must_not_set(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SignUp.model_validate({**SIGN_UP, **extra})


@pytest.mark.parametrize(
    "extra",
    [{"email": "new@example.com"}, {"role": "ADMIN"}, {"active": True}, {"password": "x" * 12}],
)
def test_profile_update_refuses_email_role_active_and_password(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        UserUpdate.model_validate(extra)


def test_profile_update_cannot_blank_the_name() -> None:
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"name": None})
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"name": "   "})


def test_profile_update_can_clear_optional_fields() -> None:
    update = UserUpdate.model_validate({"phone": None, "birth_date": None, "gender": None})
    assert update.model_dump(exclude_unset=True) == {
        "phone": None,
        "birth_date": None,
        "gender": None,
    }


@pytest.mark.parametrize("model", [SignUp, UserUpdate])
def test_birth_date_cannot_be_in_the_future(model: type[SignUp | UserUpdate]) -> None:
    tomorrow = seoul_today() + timedelta(days=1)
    body: dict[str, Any] = dict(SIGN_UP) if model is SignUp else {}
    body["birth_date"] = tomorrow.isoformat()
    with pytest.raises(ValidationError, match="birth_date"):
        model.model_validate(body)
    body["birth_date"] = "1990-05-17"
    assert model.model_validate(body).birth_date == date(1990, 5, 17)


@pytest.mark.parametrize("phone", ["010-1234-5678", "+82 10 1234 5678", "0212345678"])
def test_reasonable_phone_numbers_are_accepted(phone: str) -> None:
    assert SignUp.model_validate({**SIGN_UP, "phone": phone}).phone == phone


@pytest.mark.parametrize("phone", ["", "call me", "12", "010-1234-5678; DROP TABLE"])
def test_nonsense_phone_numbers_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError):
        SignUp.model_validate({**SIGN_UP, "phone": phone})


@pytest.mark.parametrize("email", ["not-an-email", "kim@", "@example.com", "kim example.com"])
def test_sign_up_needs_a_valid_email(email: str) -> None:
    with pytest.raises(ValidationError):
        SignUp.model_validate({**SIGN_UP, "email": email})


def test_log_in_trims_the_email() -> None:
    assert LogIn.model_validate({"email": " kim@example.com ", "password": "x"}).email == (
        "kim@example.com"
    )


def test_admin_update_accepts_only_known_roles() -> None:
    assert AdminUserUpdate.model_validate({"role": "HOST"}).role is Role.HOST
    with pytest.raises(ValidationError):
        AdminUserUpdate.model_validate({"role": "ROOT"})
    with pytest.raises(ValidationError):
        AdminUserUpdate.model_validate({"email": "x@example.com"})

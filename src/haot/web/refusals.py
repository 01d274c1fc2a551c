"""The API's refusals in the visitor's language (ADR 0017: the page shows the API's answer).

The API words its refusals in English for any client; the pages word them again from what the
answer says in a stable form:
- a field's error (422 ``validation_error``) by its pydantic ``type``, its limits taken from
  ``ctx`` ("Enter at least 8 characters.");
- a refusal of our own validators or rules (``value_error``, the detail of ``validation_error``
  and ``weak_password``, the stay rules): by its known message, numbers taken from it;
- any other refusal by its ``code`` (``sold_out``, ``too_many_pending``, ...).
What the pages do not know (a new validator's message, a new code) is shown as the API words it,
never dropped. Messages are English msgids, translated in the catalogs (``messages.po``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from haot.web.i18n import Formats, catalog


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "translated where shown")
    """Marks ``message`` for the catalogs (tests/web/test_catalogs.py extracts it); it is
    translated where it is shown."""
    return message


FILL_IN = N_("Fill in this field.")
WHOLE_NUMBER = N_("Enter a whole number.")
NUMBER = N_("Enter a number.")
DATE = N_("Enter a date (YYYY-MM-DD).")
MOMENT = N_("Enter a date and a time.")
CHOICE = N_("Choose one of the options.")
INVALID = N_("This value is not valid.")

# A field's error by its pydantic type, when its message needs no limit.
BY_TYPE = {
    "missing": FILL_IN,
    "int_parsing": WHOLE_NUMBER,
    "int_parsing_size": WHOLE_NUMBER,
    "int_type": WHOLE_NUMBER,
    "int_from_float": WHOLE_NUMBER,
    "float_parsing": NUMBER,
    "float_type": NUMBER,
    "finite_number": NUMBER,
    "bool_parsing": N_("Choose yes or no."),
    "bool_type": N_("Choose yes or no."),
    "date_parsing": DATE,
    "date_from_datetime_parsing": DATE,
    "date_from_datetime_inexact": DATE,
    "date_type": DATE,
    "datetime_parsing": MOMENT,
    "datetime_from_date_parsing": MOMENT,
    "datetime_object_invalid": MOMENT,
    "datetime_type": MOMENT,
    "timezone_aware": MOMENT,
    "time_parsing": N_("Enter a time (HH:MM)."),
    "time_type": N_("Enter a time (HH:MM)."),
    "uuid_parsing": N_("This is not a valid ID."),
    "uuid_type": N_("This is not a valid ID."),
    "uuid_version": N_("This is not a valid ID."),
    "enum": CHOICE,
    "literal_error": CHOICE,
    "string_type": INVALID,
    "list_type": INVALID,
    "dict_type": INVALID,
    "model_type": INVALID,
    "model_attributes_type": INVALID,
    "extra_forbidden": N_("This field is not expected."),
    "json_invalid": N_("The form could not be read. Send it again."),
    "json_type": N_("The form could not be read. Send it again."),
}

# A field's error by its pydantic type and the limit it names (``ctx``): a number, or a date.
BY_LIMIT = {
    ("string_too_short", "min_length"): N_("Enter at least %(min_length)s characters."),
    ("string_too_long", "max_length"): N_("Enter at most %(max_length)s characters."),
    ("too_short", "min_length"): N_("Give at least %(min_length)s entries."),
    ("too_long", "max_length"): N_("Give at most %(max_length)s entries."),
    ("greater_than_equal", "ge"): N_("Enter %(ge)s or more."),
    ("greater_than", "gt"): N_("Enter more than %(gt)s."),
    ("less_than_equal", "le"): N_("Enter %(le)s or less."),
    ("less_than", "lt"): N_("Enter less than %(lt)s."),
}
BY_DATE_LIMIT = {
    "ge": N_("Enter %(ge)s or later."),
    "gt": N_("Enter a date after %(gt)s."),
    "le": N_("Enter %(le)s or earlier."),
    "lt": N_("Enter a date before %(lt)s."),
}
# Patterns of the schemas (``string_pattern_mismatch``): a link's, else any.
LINK = N_("Enter a link that starts with http:// or https://.")
FORMAT = N_("The format is not right.")

# Our own validators' and rules' messages (pydantic prefixes a validator's with "Value error, "),
# as the API words them (a pattern: its numbers and dates fill the msgid's placeholders).
_KNOWN: list[tuple[str, str]] = [
    # identity: the account's fields and the password policy
    (r"value is not a valid email address\b.*", N_("Enter a valid email address.")),
    (r"birth_date cannot be in the future", N_("The birth date cannot be in the future.")),
    (r"name cannot be null", FILL_IN),
    (
        r"Password must be at least (?P<count>\d+) characters",
        N_("Use at least %(count)s characters."),
    ),
    (
        r"Password must be at most (?P<count>\d+) characters",
        N_("Use at most %(count)s characters."),
    ),
    (
        r"Password is too repetitive",
        N_("The password is too repetitive: use more different characters."),
    ),
    (
        r"Password must not contain your email or name",
        N_("The password must not contain your email or name."),
    ),
    # lodging: the lodging, its calendar, a search, the stay rules
    (
        r"cancellation_policy tiers must have distinct days_before",
        N_("Each refund tier needs its own number of days before check-in."),
    ),
    (r"end must be after start", N_("The end must be after the start.")),
    (
        r"a calendar update covers at most (?P<count>\d+) nights",
        N_("A change covers at most %(count)s nights."),
    ),
    (
        r"min_stay must not exceed max_stay",
        N_("The shortest stay cannot be longer than the longest."),
    ),
    (
        r"(?P<date>\d{4}-\d{2}-\d{2}): min_stay (\d+ )?would exceed max_stay( \d+)?",
        N_("On %(date)s the shortest stay would be longer than the longest."),
    ),
    (r"start must not be in the past", N_("The start cannot be in the past.")),
    (r"min_price must not exceed max_price", N_("The lowest total cannot be above the highest.")),
    (r"give both check_in and check_out, or neither", N_("Give both dates, or neither.")),
    (r"check_in must not be in the past", N_("Check-in cannot be in the past.")),
    (r"check_out must be after check_in", N_("Check-out must be after check-in.")),
    (r"a stay is at most (?P<count>\d+) nights", N_("A stay is at most %(count)s nights.")),
    (
        r"(?P<date>\d{4}-\d{2}-\d{2}) needs a stay of (?P<shortest>\d+) to (?P<longest>\d+) nights",
        N_("A stay that includes %(date)s must be %(shortest)s to %(longest)s nights."),
    ),
    (
        r"this room takes at most (?P<count>\d+) guests",
        N_("This room takes at most %(count)s guests."),
    ),
    # reservation, coupon, point
    (
        r"points cannot exceed the amount left after the coupon",
        N_("Use no more points than the amount left after the coupon."),
    ),
    (r"valid_to must be after valid_from", N_("The end of validity must be after its start.")),
    (r"a percent discount is at most 100", N_("A percent discount is at most 100.")),
    (
        r"max_discount applies to PERCENT coupons only",
        N_("A maximum discount applies to percent coupons only."),
    ),
    (r"ends_at must be after starts_at", N_("The end must be after the start.")),
    (r"ends_at must be in the future", N_("The end must be in the future.")),
    (r"status can only be set to CLOSED", N_("An event can only be closed.")),
    (r"the coupon is not valid yet", N_("The coupon is not valid yet.")),
    (r"the coupon has expired", N_("The coupon has expired.")),
    (
        r"the order must be at least (?P<amount>\d+) KRW",
        N_("The coupon needs an order of at least %(amount)s won."),
    ),
    (r"the coupon is for another lodging", N_("The coupon is for another lodging.")),
    (
        r"the coupon is no longer active|the coupon is inactive or expired",
        N_("The coupon is no longer active."),
    ),
    (r"expires_at must be in the future", N_("The expiry must be in the future.")),
    # review
    (r"cannot be null; leave the field out to keep it", FILL_IN),
    (
        r"give at least one of rating, text, image_urls",
        N_("Change the rating, the text or the photos."),
    ),
    (r"a reason is required to hide a review", N_("Give the reason for hiding the review.")),
    # jobs
    (r"as_of must be an ISO 8601 date or timestamp", N_("Enter a date, or a date and a time.")),
    (r"job '[\w-]+' has no dry-run mode", N_("This job has no dry run.")),
]
KNOWN = [(re.compile(pattern), message) for pattern, message in _KNOWN]
_VALIDATOR_PREFIXES = ("Value error, ", "Assertion failed, ")

# A refusal without a known message, by its code: what the pages show from the problem's detail.
BY_CODE = {
    "sold_out": N_("Some nights of the stay are sold out. Choose other dates."),
    "invalid_stay": N_("This stay cannot be booked: check the dates and the number of guests."),
    "invalid_dates": N_("Check the dates."),
    "invalid_month": N_("Enter a month as YYYY-MM."),
    "price_required": N_("Nights that are not open yet need a price to open them."),
    "inventory_exceeds_rooms": N_("A night cannot offer more rooms than the room type has."),
    "inventory_conflict": N_("Some nights have more rooms booked than that."),
    "lodging_has_bookings": N_(
        "It has reservations to come: cancel them, or wait until they are over."
    ),
    "coupon_not_usable": N_("The coupon cannot be used for this reservation."),
    "insufficient_points": N_("You do not have that many points."),
    "too_many_pending": N_("You have too many unpaid reservations: pay or cancel one first."),
    "booking_failed": N_("This booking failed. Open the booking page again and try once more."),
    "idempotency_key_reused": N_(
        "This form was sent before with other choices. Open the booking page again."
    ),
    "idempotency_key_in_flight": N_("This booking is still being made. Wait a moment."),
    "cancellation_closed": N_("The stay has started: it can no longer be cancelled."),
    "invalid_state": N_("The reservation can no longer be changed this way."),
    "email_taken": N_("An account with this email exists already."),
    "weak_password": N_("Choose a stronger password."),
    "invalid_credentials": N_("The email or the password is wrong."),
    "rate_limited": N_("Too many tries. Wait a minute and try again."),
    "event_started": N_("The event has started: it can only be renamed, extended or closed."),
    "coupon_not_found": N_("There is no such coupon."),
    "user_not_found": N_("There is no such user."),
    "lodging_not_found": N_("There is no such lodging."),
    "room_type_not_found": N_("There is no such room."),
    "stay_not_completed": N_("Only a completed stay can be reviewed."),
    "review_window_closed": N_("The time to review this stay, or to change its review, is over."),
    "already_reviewed": N_("This stay has its review already."),
}


def field_message(error: Mapping[str, Any], language: str) -> str:
    """One of a 422's ``errors`` (``loc``, ``message``, ``type``, ``ctx``) in ``language``: by its
    type and limits, a validator's by its known message, else the API's message."""
    api_message = str(error.get("message", ""))
    kind = str(error.get("type", ""))
    ctx = error.get("ctx")
    limits: Mapping[str, Any] = ctx if isinstance(ctx, Mapping) else {}
    if kind in ("value_error", "assertion_error"):
        return known_message(api_message, language) or api_message
    if kind in ("string_too_short", "too_short") and limits.get("min_length") in (0, 1):
        return _say(FILL_IN, language)
    if kind == "string_pattern_mismatch":
        return _say(LINK if "https?://" in str(limits.get("pattern", "")) else FORMAT, language)
    for (limited, key), message in BY_LIMIT.items():
        if kind == limited and isinstance(limits.get(key), int | float | str):
            limit = limits[key]
            if isinstance(limit, str) and key in BY_DATE_LIMIT and _is_date(limit):
                message = BY_DATE_LIMIT[key]
            return _say(message, language, {key: limit})
    if kind in BY_TYPE:
        return _say(BY_TYPE[kind], language)
    return api_message


def refusal_message(code: str, detail: str, language: str) -> str:
    """A refusal without field errors (its ``code`` and ``detail``) in ``language``: our own
    message when the detail is one (it says more than the code), else the code's, else the API's
    detail."""
    if known := known_message(detail, language):
        return known
    if code in BY_CODE:
        return _say(BY_CODE[code], language)
    return detail or code


def known_message(api_message: str, language: str) -> str | None:
    """One of our validators' or rules' messages in ``language`` (None: not one we know)."""
    text = api_message.strip()
    for prefix in _VALIDATOR_PREFIXES:
        text = text.removeprefix(prefix)
    for pattern, message in KNOWN:
        if found := pattern.fullmatch(text):
            return _say(message, language, found.groupdict())
    return None


def _say(message: str, language: str, values: Mapping[str, Any] | None = None) -> str:
    """``message`` translated, its placeholders filled with ``values`` as ``language`` writes
    them (numbers grouped, dates in full)."""
    translated = _gettext(language)(message)
    if not values:
        return translated
    shown = {name: _shown(value, language) for name, value in values.items()}
    return translated % shown


def _shown(value: Any, language: str) -> str:
    formats = Formats(language)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return formats.number(value)
    text = str(value)
    if text.isdigit():
        return formats.number(int(text))
    if _is_date(text):
        return formats.day(text)
    return text


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _gettext(language: str) -> Callable[[str], str]:
    return catalog(language).gettext

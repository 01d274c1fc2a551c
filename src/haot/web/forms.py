"""Form mechanics the admin and host pages share: a form post's checks, the API's refusal placed
beside the form's fields, the values a form gives, a list's page and its links, where to go back
to, and the ``datetime-local`` inputs. One implementation each, so that every form behaves alike."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import Response

from haot.platform.clock import SEOUL
from haot.web.api_client import ApiProblem
from haot.web.pages import html_error, visitor_in_role
from haot.web.session import Visitor, check_csrf

# The API's refusals a form shows (invalid input, a conflict); any other status is not the form's.
REFUSED = (409, 422)
# The last page the API lists (its ``page`` query parameter goes no further).
LAST_PAGE = 100_000


async def posted_in_role(
    request: Request, *roles: str
) -> tuple[dict[str, str], Visitor, Response | None]:
    """A form post to a page for some roles: its fields once its CSRF token holds (checked first,
    before the session is looked at), its visitor, and what to answer instead when the visitor may
    not send it (``visitor_in_role``: the log-in page, or the 403 page)."""
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *roles)
    return form, visitor, refusal


def refused(problem: ApiProblem) -> bool:
    """A refusal the form shows beside its fields; any other problem is not the form's to show."""
    return problem.status in REFUSED


def triage(request: Request, visitor: Visitor, problem: ApiProblem) -> Response | None:
    """A form's problem sorted: the 404 page when what the form changes is not there, None for a
    refusal the form shows beside its fields (``refused``); any other problem is raised again, for
    the error page."""
    if problem.status == 404:
        return html_error(request, 404, visitor=visitor)
    if not refused(problem):
        raise problem
    return None


def errors_of(
    problem: ApiProblem,
    fields: Iterable[str],
    *,
    key: str = "{}",
    field_of_code: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The API's refusal beside the form's fields, so the visitor sees which input to change.

    Each error goes to the innermost field its location names (``region.city``,
    ``cancellation_policy.0.days_before``: the API nests some bodies), else to the first field its
    message names (a refusal of the whole body: "ends_at must be after starts_at"), else to the
    form. A refusal without errors goes to the field ``field_of_code`` gives its code (the API
    words some refusals without a field), else to the field its detail names, else to the form.

    ``key`` makes a field's key (its input's id) where a page has the same form more than once:
    "{}-grant" gives "amount-grant" and "form-grant".

    The field is found from the API's English words; what is shown is in the visitor's language
    (``ApiProblem.message_of``, ``ApiProblem.message``)."""
    known = tuple(fields)
    errors: dict[str, str] = {}
    for error in problem.errors:
        worded = str(error.get("message", ""))
        location = [str(part) for part in error.get("loc") or ()]
        name = next((part for part in reversed(location) if part in known), None)
        shown = problem.message_of(error) if worded else problem.message()
        errors.setdefault(key.format(name or named_in(worded, known) or "form"), shown)
    if not problem.errors:
        name = (field_of_code or {}).get(problem.code) or named_in(problem.detail, known)
        errors[key.format(name or "form")] = problem.message()
    return errors


def named_in(text: str, fields: Iterable[str]) -> str | None:
    """The field ``text`` names first: a field's name standing as a word of its own (``start``
    is not named by "starts_at", nor ``end`` by "weekend_price")."""
    found = [
        (match.start(), name)
        for name in fields
        if (match := re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text))
    ]
    return min(found)[1] if found else None


def given(form: Mapping[str, str], *names: str) -> dict[str, str]:
    """The form's non-empty values of ``names``, stripped: an empty optional field means "not
    given", so the API keeps its default (or the value it has) instead of refusing ""."""
    return {name: form[name].strip() for name in names if form.get(name, "").strip()}


def page_number(raw: str | None) -> int:
    """A list's page from the address: a number the API takes (a page past the end is empty);
    anything else is the first page rather than an error page."""
    return min(max(1, int(raw)), LAST_PAGE) if raw and raw.isdigit() else 1


def page_link(path: str, wanted: Mapping[str, Any], number: int) -> str:
    """The address of a list's page ``number``, keeping its filters (the empty ones left out)."""
    kept = {k: v for k, v in wanted.items() if v not in (None, "") and k != "page"}
    return f"{path}?{urlencode(kept | {'page': number})}"


def pages(found: Mapping[str, Any], path: str, wanted: Mapping[str, Any]) -> dict[str, str | None]:
    """Links to the previous and the next page of a list the API answered (None: no such page),
    keeping its filters."""
    page, size, total = int(found["page"]), int(found["size"]), int(found["total"])
    return {
        "previous": page_link(path, wanted, page - 1) if page > 1 else None,
        "next": page_link(path, wanted, page + 1) if page * size < total else None,
    }


def back_to(form: Mapping[str, str], prefix: str, default: str) -> str:
    """The list to return to after a form (its filters and page kept): the form's ``back`` when
    it is a path under ``prefix``, else ``default``, so a form cannot send anyone elsewhere."""
    target = form.get("back", "")
    return target if target.startswith(prefix) and "//" not in target else default


def query_of(target: str) -> dict[str, str]:
    """The query of an address (a ``back`` link's filters), to show that list again."""
    return dict(parse_qsl(urlsplit(target).query))


def from_local(value: str | None) -> str | None:
    """A ``datetime-local`` input (Asia/Seoul wall time) as ISO 8601 with Seoul's offset (Korea
    keeps no daylight saving: always +09:00); empty is None. Anything else goes to the API as
    typed, for the API to refuse."""
    value = (value or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        return f"{value}:00+09:00"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", value):
        return f"{value}+09:00"
    return value


def to_local(value: str | None) -> str:
    """An API timestamp as a ``datetime-local`` input shows it: Seoul wall time, to the minute."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(SEOUL).strftime("%Y-%m-%dT%H:%M")

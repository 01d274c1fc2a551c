"""What the host pages share: who may see them, the size of a list's page, the API's refusals
placed beside the host's form fields, one of my lodgings, and a delete button's post."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from haot.web.api_client import Api, ApiProblem
from haot.web.forms import errors_of, posted_in_role
from haot.web.pages import html_error
from haot.web.session import Visitor, go

ROLES = ("HOST", "ADMIN")
PAGE_SIZE = 20
# Refusals that the API words without a field, and the field they are about.
FIELD_OF_CODE = {
    "price_required": "price",
    "inventory_exceeds_rooms": "total_rooms",
    "inventory_conflict": "total_rooms",
}


def host_errors(problem: ApiProblem, fields: Iterable[str]) -> dict[str, str]:
    """The API's refusal beside a host form's fields (``errors_of``), the refusals the API words
    without a field placed on the field they are about."""
    return errors_of(problem, fields, field_of_code=FIELD_OF_CODE)


async def lodging_of(api: Api, lodging_id: str) -> dict[str, Any] | None:
    """One of my lodgings (None: no such lodging, someone else's, or no lodging's id at all)."""
    try:
        lodging: dict[str, Any] = await api.get(f"/host/lodgings/{lodging_id}")
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return None
        raise
    return lodging


async def delete_form(
    request: Request,
    path: str,
    done: str,
    again: Callable[[Visitor, dict[str, str]], Awaitable[Response]],
) -> Response:
    """A delete button's post: what the API's ``path`` names deleted, then on to ``done``; someone
    else's (or unknown) is the 404 page; when the API refuses (409, still in use) the page
    ``again`` shows why beside the button."""
    _, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.delete(path)
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404, visitor=visitor)
        if problem.status != 409:
            raise
        return await again(visitor, {"form": problem.message(), "code": problem.code})
    return go(request, visitor, done)

"""What the admin pages share: their render (with the times the pages show in Seoul) and a page
of a list searched by its filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from haot.platform.clock import SEOUL
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import errors_of, to_local
from haot.web.pages import render
from haot.web.session import Visitor

PAGE_SIZE = 20
# A list the API did not answer (its filters refused): the page shows no rows.
EMPTY: dict[str, Any] = {"items": [], "page": 1, "size": PAGE_SIZE, "total": 0}


def seoul(value: str) -> datetime:
    """An API timestamp in Asia/Seoul, for the pages to show."""
    return datetime.fromisoformat(value).astimezone(SEOUL)


def admin_render(
    request: Request, template: str, visitor: Visitor, status: int = 200, **context: Any
) -> HTMLResponse:
    """An admin page: ``seoul`` and ``to_local`` at hand for its times."""
    return render(
        request,
        template,
        status=status,
        visitor=visitor,
        seoul=seoul,
        to_local=to_local,
        **context,
    )


async def listed(
    request: Request,
    visitor: Visitor,
    path: str,
    params: dict[str, Any],
    filters: tuple[str, ...],
    *,
    key: str = "{}",
) -> tuple[dict[str, Any], dict[str, str]]:
    """A page of an admin list as the API answers it, with no errors; or, when the API refuses the
    list's filters (422), no rows and the refusal beside the filters (``errors_of``)."""
    try:
        async with Api(request, token=visitor.token) as api:
            found: dict[str, Any] = await api.get(path, params)
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        return EMPTY, errors_of(problem, filters, key=key)
    return found, {}

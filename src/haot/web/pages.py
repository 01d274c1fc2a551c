"""Guest pages: home and search, lodging (ADR 0017; paths and hooks are SPEC's contract)."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from haot.platform.clock import seoul_today
from haot.web.api_client import Api, ApiProblem
from haot.web.i18n import COOKIE, LANGUAGES, Formats, catalog, language_of
from haot.web.session import Visitor, login_first, visitor_of

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
SORTS = ("price", "-price", "rating", "reviews", "newest")
PAGE_SIZE = 20
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
LATEST_REVIEWS = 3  # on the lodging's page; the rest on its reviews page


def _environment(language: str) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
    return environment


_ENVIRONMENTS = {language: _environment(language) for language in LANGUAGES}


def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    visitor: Visitor | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page in the visitor's language, with the cookies the visit must set."""
    language = language_of(request)
    visitor = visitor or Visitor()
    page = _ENVIRONMENTS[language].get_template(template)
    html = page.render(
        request=request,
        lang=language,
        languages=LANGUAGES,
        fmt=Formats(language),
        here=_here(request),
        user=visitor.user,
        csrf=visitor.csrf,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    visitor.apply(request, response)
    return response


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def html_error(
    request: Request, status: int, *, visitor: Visitor | None = None, reason: str = ""
) -> HTMLResponse:
    """The error page; ``reason`` "forbidden" tells a 403 of a role apart from an expired form."""
    return render(
        request, "error.html", status=status, visitor=visitor, status_code=status, reason=reason
    )


async def visitor_in_role(request: Request, *roles: str) -> tuple[Visitor, Response | None]:
    """The visitor of a page for some roles only, and what to answer instead when they may not
    see it: the log-in page for anonymous visitors, a 403 page for other roles. The API checks
    the role again on every call; this only spares the visitor a page of refusals."""
    visitor = await visitor_of(request)
    if visitor.user is None:
        return visitor, login_first(request, visitor)
    if visitor.user.get("role") not in roles:
        return visitor, html_error(request, 403, visitor=visitor, reason="forbidden")
    return visitor, None


_NOT_PAGES = ("/api/", "/fake-portone/", "/metrics", "/healthz", "/readyz", "/docs", "/openapi")


def page_error(request: Request, status: int) -> Response | None:
    """The error page a browser gets for a page path; API paths keep problem+json."""
    path = request.url.path
    if path.startswith(_NOT_PAGES) or "text/html" not in request.headers.get("accept", ""):
        return None
    return html_error(request, status)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    visitor = await visitor_of(request)
    async with Api(request) as api:
        popular = await api.get("/lodgings", {"sort": "rating", "size": 8})
    return render(
        request, "home.html", visitor=visitor, form=_search_form({}), popular=popular["items"]
    )


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request) -> Response:
    visitor = await visitor_of(request)
    wanted = dict(request.query_params)
    form = _search_form(wanted)
    params: dict[str, str | int | None] = {
        key: wanted.get(key)
        for key in ("region", "check_in", "check_out", "guests", "min_price", "max_price")
    }
    params["sort"] = wanted.get("sort") if wanted.get("sort") in SORTS else None
    params["page"] = wanted.get("page") or 1
    params["size"] = PAGE_SIZE
    try:
        async with Api(request) as api:
            found = await api.get("/lodgings", params)
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        return render(
            request,
            "search.html",
            status=422,
            visitor=visitor,
            form=form,
            errors=problem.field_errors() or {"form": problem.message()},
            found=None,
            pages=[],
        )
    pages = _pages(found, wanted)
    return render(
        request, "search.html", visitor=visitor, form=form, errors={}, found=found, pages=pages
    )


@router.get("/lodgings/{lodging_id}", response_class=HTMLResponse)
async def lodging(request: Request, lodging_id: str) -> Response:
    visitor = await visitor_of(request)
    stay = {key: request.query_params.get(key, "") for key in ("check_in", "check_out", "guests")}
    asked = request.query_params.get("month", "")
    month = asked if MONTH.fullmatch(asked) else (stay["check_in"] or seoul_today().isoformat())[:7]
    try:
        async with Api(request) as api:
            detail = await api.get(f"/lodgings/{lodging_id}")
            prices = await api.get(f"/lodgings/{lodging_id}/calendar", {"month": month})
            reviews = await api.get(f"/lodgings/{lodging_id}/reviews", {"size": LATEST_REVIEWS})
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404)
        raise
    weeks = {
        room["room_type_id"]: month_weeks(month, room["days"]) for room in prices["room_types"]
    }
    here = f"/lodgings/{lodging_id}"
    return render(
        request,
        "lodging.html",
        visitor=visitor,
        lodging=detail,
        stay=stay,
        month=month,
        weeks=weeks,
        months={
            "previous": _month_link(here, stay, _shift(month, -1)),
            "next": _month_link(here, stay, _shift(month, 1)),
        },
        night_link=lambda night: _month_link(
            here,
            stay
            | {
                "check_in": night["date"],
                "check_out": (date.fromisoformat(night["date"]) + timedelta(days=1)).isoformat(),
            },
            month,
        ),
        reviews=reviews,
        book_query={rt["id"]: _book_query(rt["id"], stay) for rt in detail["room_types"]},
    )


def month_weeks(month: str, days: list[dict[str, Any]]) -> list[list[dict[str, Any] | None]]:
    """The month as weeks from Sunday to Saturday (as Korean calendars show it): each day with
    its night from the calendar (None: not open), blanks before the first and after the last."""
    first = date.fromisoformat(f"{month}-01")
    length = calendar.monthrange(first.year, first.month)[1]
    by_date = {day["date"]: day for day in days}
    cells: list[dict[str, Any] | None] = [None] * ((first.weekday() + 1) % 7)
    for offset in range(length):
        today = first + timedelta(days=offset)
        cells.append(
            {"date": today.isoformat(), "day": today.day, "night": by_date.get(today.isoformat())}
        )
    cells += [None] * (-len(cells) % 7)
    return [cells[start : start + 7] for start in range(0, len(cells), 7)]


def _shift(month: str, by: int) -> str:
    year, number = divmod(int(month[:4]) * 12 + int(month[5:7]) - 1 + by, 12)
    return f"{year:04d}-{number + 1:02d}"


def _month_link(path: str, stay: dict[str, str], month: str) -> str:
    return f"{path}?{urlencode({k: v for k, v in stay.items() if v} | {'month': month})}"


def safe_next(target: str | None) -> str:
    """Where to go next: a path on this site, never another site (``//host`` and ``/\\host``
    are other sites to a browser)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/lang/{language}")
async def switch_language(request: Request, language: str, next: str = "/") -> Response:
    """The language switch: a plain link, remembered in a cookie for a year."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(
            COOKIE, language, max_age=365 * 24 * 3600, httponly=True, samesite="lax"
        )
    return response


def _search_form(wanted: dict[str, str]) -> dict[str, str]:
    """The search form's values: as asked, or (before any search) a night a week from now."""
    today = seoul_today()
    defaults = (
        {}
        if wanted
        else {
            "check_in": (today + timedelta(days=7)).isoformat(),
            "check_out": (today + timedelta(days=8)).isoformat(),
            "guests": "2",
        }
    )
    fields = ("region", "check_in", "check_out", "guests", "min_price", "max_price", "sort")
    form = {name: wanted.get(name, defaults.get(name, "")) for name in fields}
    form["sort"] = form["sort"] or "price"
    form["today"] = today.isoformat()
    return form


def _pages(found: dict[str, Any], wanted: dict[str, str]) -> list[dict[str, Any]]:
    count = -(-int(found["total"]) // PAGE_SIZE)
    current = int(found["page"])
    return [
        {"number": n, "current": n == current, "href": "/search?" + urlencode(wanted | {"page": n})}
        for n in range(max(1, current - 4), min(count, current + 4) + 1)
    ]


def _book_query(room_type_id: str, stay: dict[str, str]) -> str:
    return urlencode({"room_type_id": room_type_id, **{k: v for k, v in stay.items() if v}})

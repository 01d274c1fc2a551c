"""A room type's calendar for its host (SPEC: ``/host/room-types/{id}/calendar``): the month night
by night, and the form that opens, prices, closes and reopens a range of nights."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_skeleton, get_day_names
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.platform.clock import seoul_today
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import given, posted_in_role, triage
from haot.web.host.common import ROLES, host_errors, lodging_of
from haot.web.i18n import language_of
from haot.web.pages import html_error, render, visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
# A lodging's id in a calendar link: the lodging is asked for only when the link names one.
UUID = re.compile(r"[0-9a-fA-F-]{32,36}")
CALENDAR_FIELDS = (
    "start",
    "end",
    "price",
    "weekend_price",
    "total_rooms",
    "closed",
    "min_stay",
    "max_stay",
)


@router.get("/host/room-types/{room_type_id}/calendar", response_class=HTMLResponse)
async def calendar_page(
    request: Request, room_type_id: str, month: str = "", lodging: str = ""
) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await _calendar(
        request, visitor, room_type_id, month or f"{seoul_today():%Y-%m}", lodging
    )


async def _calendar(
    request: Request,
    visitor: Visitor,
    room_type_id: str,
    month: str,
    lodging_id: str,
    *,
    posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The room type's month, night by night, with the form that opens, prices, closes and
    reopens a range of nights (``lodging``: whose room type, for its names and the way back)."""
    try:
        async with Api(request, token=visitor.token) as api:
            found = await api.get(f"/host/room-types/{room_type_id}/calendar", {"month": month})
            lodging = await lodging_of(api, lodging_id) if UUID.fullmatch(lodging_id) else None
    except ApiProblem as problem:
        if problem.status in (404, 422):  # someone else's room type, or no such month
            return html_error(request, 404, visitor=visitor)
        raise
    first = date.fromisoformat(f"{found['month']}-01")
    today = seoul_today()
    nights = {night["date"]: night for night in found["days"]}
    days = [
        {
            "date": day.isoformat(),
            "next": (day + timedelta(days=1)).isoformat(),
            "weekday": day.weekday(),
            "night": nights.get(day.isoformat()),
        }
        for day in (
            first + timedelta(days=n) for n in range(monthrange(first.year, first.month)[1])
        )
    ]
    following = (first + timedelta(days=32)).replace(day=1)
    start = max(first, today)  # nights before today are the past: the API changes none
    form = posted or {
        "start": start.isoformat(),
        "end": max(following, start + timedelta(days=1)).isoformat(),
    }
    room_type = next(
        (room for room in (lodging or {}).get("room_types", []) if room["id"] == room_type_id),
        None,
    )
    back = {"lodging": lodging["id"]} if lodging and room_type else {}
    return render(
        request,
        "host_calendar.html",
        status=status,
        visitor=visitor,
        room_type_id=room_type_id,
        room_type=room_type,
        lodging=lodging if room_type else None,
        month=found["month"],
        month_name=format_skeleton("yMMMM", first, locale=language_of(request)),
        days=days,
        weekdays=_weekdays(request),
        today=today.isoformat(),
        previous=_month_link(room_type_id, first - timedelta(days=1), back),
        next=_month_link(room_type_id, following, back),
        form=form,
        errors=errors or {},
        section="lodgings",
    )


def _weekdays(request: Request) -> list[str]:
    """Monday to Sunday, abbreviated in the page's language."""
    names = get_day_names("abbreviated", locale=language_of(request))
    return [str(names[weekday]) for weekday in range(7)]


def _month_link(room_type_id: str, day: date, back: dict[str, str]) -> str:
    query = urlencode({"month": f"{day:%Y-%m}", **back})
    return f"/host/room-types/{room_type_id}/calendar?{query}"


@router.post("/host/room-types/{room_type_id}/calendar", response_class=HTMLResponse)
async def change_calendar(request: Request, room_type_id: str) -> Response:
    """Open, price, close or reopen ``[start, end)``: only the fields given change."""
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    body: dict[str, Any] = {"start": posted.get("start", ""), "end": posted.get("end", "")}
    body |= given(posted, *CALENDAR_FIELDS[2:])
    lodging_id = posted.get("lodging", "")
    try:
        async with Api(request, token=visitor.token) as api:
            await api.put(f"/host/room-types/{room_type_id}/calendar", body)
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        month = posted.get("month", "") or f"{seoul_today():%Y-%m}"
        return await _calendar(
            request,
            visitor,
            room_type_id,
            month,
            lodging_id,
            posted={name: posted.get(name, "") for name in CALENDAR_FIELDS},
            errors=host_errors(problem, CALENDAR_FIELDS),
            status=problem.status,
        )
    back = {"lodging": lodging_id} if lodging_id else {}
    try:
        shown = date.fromisoformat(body["start"])  # the month where the change begins
    except ValueError:
        shown = seoul_today()
    return go(request, visitor, _month_link(room_type_id, shown, back) + "&saved=1")

"""Host pages: my lodgings, their room types and calendars, reservations of my lodgings (SPEC:
``/host/lodgings``, ``/host/lodgings/{id}``, ``/host/room-types/{id}/calendar``). Every rule is the
API's; the page shows its answer."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from babel.dates import format_skeleton, get_day_names
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.platform.clock import seoul_today
from haot.web.api_client import Api, ApiProblem
from haot.web.i18n import language_of
from haot.web.pages import html_error, render, visitor_in_role
from haot.web.session import Visitor, check_csrf, go

router = APIRouter(include_in_schema=False)
ROLES = ("HOST", "ADMIN")
PAGE_SIZE = 20
TIER_ROWS = 4
UUID = re.compile(r"[0-9a-fA-F-]{32,36}")
CANCELLABLE = frozenset({"PENDING", "CONFIRMED"})
STATUSES = ("PENDING", "CONFIRMED", "COMPLETED", "CANCELLED", "EXPIRED", "FAILED")

LODGING_FIELDS = (
    "name",
    "description",
    "address",
    "city",
    "district",
    "latitude",
    "longitude",
    "amenities",
    "image_urls",
    "max_guests",
    "check_in_time",
    "check_out_time",
    "max_nights",
    "cancellation_policy",
)
OPTIONAL_LODGING_FIELDS = ("max_guests", "check_in_time", "check_out_time", "max_nights")
ROOM_TYPE_FIELDS = ("name", "capacity", "total_rooms")
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
# A new lodging's form starts from these (the host changes them; the API judges them).
NEW_LODGING = {
    "max_guests": "2",
    "check_in_time": "15:00",
    "check_out_time": "11:00",
    "max_nights": "30",
    "tiers": [("7", "100"), ("3", "50"), ("0", "0")],
}
# Refusals that the API words without a field, and the field they are about.
FIELD_OF_CODE = {
    "price_required": "price",
    "inventory_exceeds_rooms": "total_rooms",
    "inventory_conflict": "total_rooms",
}


# ------------------------------------------------------------------------------ the answers


def errors_of(problem: ApiProblem, fields: tuple[str, ...]) -> dict[str, str]:
    """The API's refusal by the form's fields: a nested location (``region.city``,
    ``cancellation_policy.0.days_before``, ``image_urls.2``) belongs to the innermost field the
    form has; a refusal of the whole body (``end must be after start``) to the field it names
    first; anything else to the form."""
    errors: dict[str, str] = {}
    for error in problem.errors:
        location = [str(part) for part in error.get("loc") or () if str(part) != "body"]
        message = str(error.get("message", ""))
        name = next((part for part in reversed(location) if part in fields), None)
        errors.setdefault(name or _named_in(message, fields) or "form", message)
    if not problem.errors:
        name = FIELD_OF_CODE.get(problem.code) or _named_in(problem.detail, fields)
        errors[name or "form"] = problem.detail
    return errors


def _named_in(message: str, fields: tuple[str, ...]) -> str | None:
    found = [
        (match.start(), name)
        for name in fields
        if (match := re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message))
    ]
    return min(found)[1] if found else None


def _refused(problem: ApiProblem) -> bool:
    """A refusal the form shows (invalid input, conflict); others are not the form's."""
    return problem.status in (409, 422)


# --------------------------------------------------------------------------------- lodgings


@router.get("/host/lodgings", response_class=HTMLResponse)
async def my_lodgings(request: Request, page: int = 1) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    async with Api(request, token=visitor.token) as api:
        found = await api.get("/host/lodgings", {"page": max(1, page), "size": PAGE_SIZE})
    return render(request, "host_lodgings.html", visitor=visitor, found=found, section="lodgings")


@router.get("/host/lodgings/new", response_class=HTMLResponse)
async def new_lodging_page(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return render(
        request,
        "host_lodging_new.html",
        visitor=visitor,
        form=_lodging_form(None),
        errors={},
        section="lodgings",
    )


@router.post("/host/lodgings/new", response_class=HTMLResponse)
async def create_lodging(request: Request) -> Response:
    posted = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            created = await api.post("/host/lodgings", _lodging_body(posted))
    except ApiProblem as problem:
        if not _refused(problem):
            raise
        return render(
            request,
            "host_lodging_new.html",
            status=problem.status,
            visitor=visitor,
            form=_posted_lodging_form(posted),
            errors=errors_of(problem, LODGING_FIELDS),
            section="lodgings",
        )
    return go(request, visitor, f"/host/lodgings/{created['id']}")


@router.get("/host/lodgings/{lodging_id}", response_class=HTMLResponse)
async def lodging_page(request: Request, lodging_id: str) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await _lodging(request, visitor, lodging_id)


async def _lodging(
    request: Request,
    visitor: Visitor,
    lodging_id: str,
    *,
    failed: str = "",
    posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The lodging's page; after a refused form (``failed``: "lodging", "new-room-type" or a room
    type's id) that form keeps what was typed and shows why."""
    try:
        async with Api(request, token=visitor.token) as api:
            lodging = await api.get(f"/host/lodgings/{lodging_id}")
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404, visitor=visitor)
        raise
    posted = posted or {}
    form = _posted_lodging_form(posted) if failed == "lodging" else _lodging_form(lodging)
    room_forms = {
        room["id"]: (
            {name: posted.get(name, "") for name in ROOM_TYPE_FIELDS}
            if failed == room["id"]
            else {name: str(room[name]) for name in ROOM_TYPE_FIELDS}
        )
        for room in lodging["room_types"]
    }
    new_room = (
        {name: posted.get(name, "") for name in ROOM_TYPE_FIELDS}
        if failed == "new-room-type"
        else {"name": "", "capacity": "2", "total_rooms": "1"}
    )
    return render(
        request,
        "host_lodging.html",
        status=status,
        visitor=visitor,
        lodging=lodging,
        form=form,
        room_forms=room_forms,
        new_room=new_room,
        failed=failed,
        errors=errors or {},
        section="lodgings",
    )


@router.post("/host/lodgings/{lodging_id}", response_class=HTMLResponse)
async def update_lodging(request: Request, lodging_id: str) -> Response:
    posted = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/host/lodgings/{lodging_id}", _lodging_body(posted))
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if not _refused(problem):
            raise
        errors = errors_of(problem, LODGING_FIELDS)
        return await _lodging(
            request,
            visitor,
            lodging_id,
            failed="lodging",
            posted=posted,
            errors=errors,
            status=problem.status,
        )
    return go(request, visitor, f"/host/lodgings/{lodging_id}?saved=lodging")


@router.get("/host/lodgings/{lodging_id}/delete", response_class=HTMLResponse)
async def delete_lodging_page(request: Request, lodging_id: str) -> Response:
    """The confirmation before deleting a lodging."""
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await _delete_page(request, visitor, lodging_id, errors={})


async def _delete_page(
    request: Request,
    visitor: Visitor,
    lodging_id: str,
    *,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    try:
        async with Api(request, token=visitor.token) as api:
            lodging = await api.get(f"/host/lodgings/{lodging_id}")
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404, visitor=visitor)
        raise
    return render(
        request,
        "host_lodging_delete.html",
        status=status,
        visitor=visitor,
        lodging=lodging,
        errors=errors,
        section="lodgings",
    )


@router.post("/host/lodgings/{lodging_id}/delete", response_class=HTMLResponse)
async def delete_lodging(request: Request, lodging_id: str) -> Response:
    await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.delete(f"/host/lodgings/{lodging_id}")
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404, visitor=visitor)
        if problem.status != 409:
            raise
        errors = {"form": problem.detail, "code": problem.code}
        return await _delete_page(request, visitor, lodging_id, errors=errors, status=409)
    return go(request, visitor, "/host/lodgings")


def _lodging_form(lodging: dict[str, Any] | None) -> dict[str, Any]:
    """The lodging form's values: a new lodging's starting values, or the lodging as it is."""
    if lodging is None:
        return dict.fromkeys(LODGING_FIELDS, "") | NEW_LODGING | _tier_rows(NEW_LODGING)
    form: dict[str, Any] = {
        name: str(lodging.get(name, ""))
        for name in ("name", "description", "address", "latitude", "longitude", "max_guests")
    }
    form |= {
        "city": lodging["region"]["city"],
        "district": lodging["region"]["district"],
        "amenities": ", ".join(lodging["amenities"]),
        "image_urls": "\n".join(lodging["image_urls"]),
        "check_in_time": str(lodging["check_in_time"])[:5],
        "check_out_time": str(lodging["check_out_time"])[:5],
        "max_nights": str(lodging["max_nights"]),
    }
    tiers = [
        (str(tier["days_before"]), str(tier["refund_percent"]))
        for tier in lodging["cancellation_policy"]
    ]
    return form | _tier_rows({"tiers": tiers})


def _posted_lodging_form(posted: dict[str, str]) -> dict[str, Any]:
    """The lodging form as it was sent (kept when the API refuses it)."""
    form: dict[str, Any] = {name: posted.get(name, "") for name in LODGING_FIELDS}
    tiers = [(days, percent) for days, percent in _posted_tiers(posted)]
    return form | _tier_rows({"tiers": tiers})


def _tier_rows(values: dict[str, Any]) -> dict[str, Any]:
    """The refund tiers as rows of the form, with empty rows to add more (up to the API's 10)."""
    tiers = list(values["tiers"])
    rows = max(TIER_ROWS, min(len(tiers) + 1, 10))
    return {"tiers": tiers + [("", "")] * (rows - len(tiers))}


def _posted_tiers(posted: dict[str, str]) -> list[tuple[str, str]]:
    """The refund tiers the form sent: each row with anything in it, in order."""
    rows = []
    for index in range(10):
        days = posted.get(f"days_before_{index}", "").strip()
        percent = posted.get(f"refund_percent_{index}", "").strip()
        if days or percent:
            rows.append((days, percent))
    return rows


def _lodging_body(posted: dict[str, str]) -> dict[str, Any]:
    """The API's lodging body from the form (values as typed: the API judges them)."""
    body: dict[str, Any] = {
        "name": posted.get("name", ""),
        "description": posted.get("description", ""),
        "address": posted.get("address", ""),
        "region": {"city": posted.get("city", ""), "district": posted.get("district", "")},
        "latitude": posted.get("latitude", "").strip(),
        "longitude": posted.get("longitude", "").strip(),
        "amenities": [a.strip() for a in posted.get("amenities", "").split(",") if a.strip()],
        "image_urls": [u.strip() for u in posted.get("image_urls", "").splitlines() if u.strip()],
        "cancellation_policy": [
            {"days_before": days, "refund_percent": percent}
            for days, percent in _posted_tiers(posted)
        ],
    }
    for name in OPTIONAL_LODGING_FIELDS:
        if value := posted.get(name, "").strip():
            body[name] = value
    return body


# ------------------------------------------------------------------------------- room types


@router.post("/host/lodgings/{lodging_id}/room-types", response_class=HTMLResponse)
async def add_room_type(request: Request, lodging_id: str) -> Response:
    posted = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    body = {name: posted.get(name, "").strip() for name in ROOM_TYPE_FIELDS}
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(f"/host/lodgings/{lodging_id}/room-types", body)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if not _refused(problem):
            raise
        return await _lodging(
            request,
            visitor,
            lodging_id,
            failed="new-room-type",
            posted=posted,
            errors=errors_of(problem, ROOM_TYPE_FIELDS),
            status=problem.status,
        )
    return go(request, visitor, f"/host/lodgings/{lodging_id}?saved=room-types#room-types")


@router.post("/host/lodgings/{lodging_id}/room-types/{room_type_id}", response_class=HTMLResponse)
async def update_room_type(request: Request, lodging_id: str, room_type_id: str) -> Response:
    posted = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    body = {name: posted.get(name, "").strip() for name in ROOM_TYPE_FIELDS}
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/host/room-types/{room_type_id}", body)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if not _refused(problem):
            raise
        return await _lodging(
            request,
            visitor,
            lodging_id,
            failed=room_type_id,
            posted=posted,
            errors=errors_of(problem, ROOM_TYPE_FIELDS),
            status=problem.status,
        )
    return go(request, visitor, f"/host/lodgings/{lodging_id}?saved=room-types#room-types")


@router.post(
    "/host/lodgings/{lodging_id}/room-types/{room_type_id}/delete", response_class=HTMLResponse
)
async def delete_room_type(request: Request, lodging_id: str, room_type_id: str) -> Response:
    await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.delete(f"/host/room-types/{room_type_id}")
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404, visitor=visitor)
        if problem.status != 409:
            raise
        return await _lodging(
            request,
            visitor,
            lodging_id,
            failed=room_type_id,
            errors={"form": problem.detail, "code": problem.code},
            status=409,
        )
    return go(request, visitor, f"/host/lodgings/{lodging_id}#room-types")


# --------------------------------------------------------------------------------- calendar


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
            lodging = await _lodging_of(api, lodging_id)
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


async def _lodging_of(api: Api, lodging_id: str) -> dict[str, Any] | None:
    """The lodging a calendar link names (None: none named, or not one of mine)."""
    if not UUID.fullmatch(lodging_id):
        return None
    try:
        lodging: dict[str, Any] = await api.get(f"/host/lodgings/{lodging_id}")
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return None
        raise
    return lodging


def _month_link(room_type_id: str, day: date, back: dict[str, str]) -> str:
    query = urlencode({"month": f"{day:%Y-%m}", **back})
    return f"/host/room-types/{room_type_id}/calendar?{query}"


@router.post("/host/room-types/{room_type_id}/calendar", response_class=HTMLResponse)
async def change_calendar(request: Request, room_type_id: str) -> Response:
    """Open, price, close or reopen ``[start, end)``: only the fields given change."""
    posted = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    body: dict[str, Any] = {"start": posted.get("start", ""), "end": posted.get("end", "")}
    body |= {name: value for name in CALENDAR_FIELDS[2:] if (value := posted.get(name, "").strip())}
    lodging_id = posted.get("lodging", "")
    try:
        async with Api(request, token=visitor.token) as api:
            await api.put(f"/host/room-types/{room_type_id}/calendar", body)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if not _refused(problem):
            raise
        month = posted.get("month", "") or f"{seoul_today():%Y-%m}"
        return await _calendar(
            request,
            visitor,
            room_type_id,
            month,
            lodging_id,
            posted={name: posted.get(name, "") for name in CALENDAR_FIELDS},
            errors=errors_of(problem, CALENDAR_FIELDS),
            status=problem.status,
        )
    back = {"lodging": lodging_id} if lodging_id else {}
    try:
        shown = date.fromisoformat(body["start"])  # the month where the change begins
    except ValueError:
        shown = seoul_today()
    return go(request, visitor, _month_link(room_type_id, shown, back) + "&saved=1")


# ----------------------------------------------------------------------------- reservations


@router.get("/host/reservations", response_class=HTMLResponse)
async def host_reservations(
    request: Request, page: int = 1, status: str = "", lodging_id: str = ""
) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await _reservations(request, visitor, page, status, lodging_id)


async def _reservations(
    request: Request,
    visitor: Visitor,
    page: int,
    status: str,
    lodging_id: str,
    *,
    failed: str = "",
    errors: dict[str, str] | None = None,
    answer: int = 200,
) -> Response:
    """Reservations of my lodgings, newest first, with a status (and lodging) filter; after a
    refused cancellation (``failed``: its reservation) the reason why beside its button."""
    chosen = {"status": status if status in STATUSES else "", "lodging_id": lodging_id}
    params = chosen | {"page": max(1, page), "size": PAGE_SIZE}
    async with Api(request, token=visitor.token) as api:
        try:
            found = await api.get("/host/reservations", params)
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            chosen["lodging_id"] = ""  # a broken lodging in the link: all my lodgings instead
            found = await api.get("/host/reservations", params | {"lodging_id": ""})
    query = {key: value for key, value in chosen.items() if value}
    here = _reservations_link(query, int(found["page"]))
    return render(
        request,
        "host_reservations.html",
        status=answer,
        visitor=visitor,
        found=found,
        chosen=chosen,
        statuses=STATUSES,
        cancellable=CANCELLABLE,
        back=here,
        newer=_reservations_link(query, found["page"] - 1) if found["page"] > 1 else "",
        older=(
            _reservations_link(query, found["page"] + 1)
            if found["page"] * found["size"] < found["total"]
            else ""
        ),
        failed=failed,
        errors=errors or {},
        section="reservations",
    )


def _reservations_link(query: dict[str, str], page: int) -> str:
    return "/host/reservations?" + urlencode(query | {"page": str(page)})


@router.post("/host/reservations/{reservation_id}/cancel", response_class=HTMLResponse)
async def cancel_reservation(request: Request, reservation_id: str) -> Response:
    """The host cancels a reservation of their lodging (the API refunds the guest in full)."""
    posted = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    reason = posted.get("reason", "").strip()
    back = posted.get("back", "")
    back = back if back.startswith("/host/reservations?") else "/host/reservations"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(
                f"/host/reservations/{reservation_id}/cancel", {"reason": reason} if reason else {}
            )
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status == 422:  # the reason, refused: shown beside it
            wanted = dict(parse_qsl(urlsplit(back).query))
            return await _reservations(
                request,
                visitor,
                int(wanted.get("page", "1")) if wanted.get("page", "1").isdigit() else 1,
                wanted.get("status", ""),
                wanted.get("lodging_id", ""),
                failed=reservation_id,
                errors=errors_of(problem, ("reason",)),
                answer=422,
            )
        if problem.status != 409:
            raise
        # Cancelled, expired or finished meanwhile: the list shows where it stands now.
    return go(request, visitor, back)

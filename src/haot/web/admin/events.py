"""Admin coupon events (SPEC: ``/admin/coupon-events``): the list, a new event, one event with
its counts following the drop live (the fragment its page polls), its edit and its closing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.platform.clock import SEOUL, utcnow
from haot.web.admin.common import PAGE_SIZE, admin_render
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import (
    errors_of,
    from_local,
    given,
    page_number,
    pages,
    posted_in_role,
    refused,
    to_local,
    triage,
)
from haot.web.pages import html_error, visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
EVENT_FIELDS = ("coupon_id", "name", "starts_at", "ends_at", "quantity", "status")
# A template gone (or never there) is a 404 without a field: the choice of template is refused.
FIELD_OF_CODE = {"coupon_not_found": "coupon_id"}


@router.get("/admin/coupon-events", response_class=HTMLResponse)
async def coupon_events(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _events(request, visitor, form=None, errors={})


def _new_event() -> dict[str, str]:
    start = utcnow().astimezone(SEOUL).replace(second=0, microsecond=0) + timedelta(minutes=10)
    return {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    }


async def _events(
    request: Request,
    visitor: Visitor,
    *,
    form: dict[str, str] | None,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    wanted = {"page": page_number(request.query_params.get("page"))}
    async with Api(request, token=visitor.token) as api:
        found = await api.get("/admin/coupon-events", wanted | {"size": PAGE_SIZE})
        templates = await api.get("/admin/coupons", {"active": "true", "size": 100})
    return admin_render(
        request,
        "admin_events.html",
        visitor,
        status=status,
        section="events",
        found=found,
        pages=pages(found, "/admin/coupon-events", wanted),
        coupons=templates["items"],
        form=form or _new_event(),
        errors=errors,
    )


@router.post("/admin/coupon-events", response_class=HTMLResponse)
async def create_event(request: Request) -> Response:
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    body: dict[str, Any] = given(form, "coupon_id", "name", "quantity")  # no quantity: unlimited
    for name in ("starts_at", "ends_at"):
        if moment := from_local(form.get(name)):
            body[name] = moment
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post("/admin/coupon-events", body)
    except ApiProblem as problem:
        if problem.code not in FIELD_OF_CODE and not refused(problem):
            raise
        errors = errors_of(problem, EVENT_FIELDS, field_of_code=FIELD_OF_CODE)
        return await _events(request, visitor, form=form, errors=errors, status=422)
    return go(request, visitor, "/admin/coupon-events")


@router.get("/admin/coupon-events/{event_id}", response_class=HTMLResponse)
async def coupon_event(request: Request, event_id: str) -> Response:
    """One event, its issued and remaining counts following the drop without a reload."""
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _event(request, visitor, event_id, "admin_event.html", form=None, errors={})


@router.get("/admin/coupon-events/{event_id}/live", response_class=HTMLResponse)
async def coupon_event_live(request: Request, event_id: str) -> Response:
    """The counts alone: what the event's page polls (htmx)."""
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _event(request, visitor, event_id, "admin_event_live.html", form=None, errors={})


async def _event(
    request: Request,
    visitor: Visitor,
    event_id: str,
    template: str,
    *,
    form: dict[str, str] | None,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    try:
        async with Api(request, token=visitor.token) as api:
            event = await api.get(f"/coupon-events/{event_id}")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        raise
    shown = form or {
        "name": event["name"],
        "starts_at": to_local(event["starts_at"]),
        "ends_at": to_local(event["ends_at"]),
        "quantity": "" if event["quantity"] is None else str(event["quantity"]),
    }
    return admin_render(
        request,
        template,
        visitor,
        status=status,
        section="events",
        event=event,
        form=shown,
        errors=errors,
    )


@router.post("/admin/coupon-events/{event_id}", response_class=HTMLResponse)
async def change_event(request: Request, event_id: str) -> Response:
    """Edit an event: only what the form changed is sent (a started event keeps its start and
    its quantity; the API says so when asked to change them)."""
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            event = await api.get(f"/coupon-events/{event_id}")
            change: dict[str, Any] = {}
            if (name := form.get("name", "").strip()) and name != event["name"]:
                change["name"] = name
            for field in ("starts_at", "ends_at"):
                moment = from_local(form.get(field))
                if moment and form.get(field, "").strip() != to_local(event[field]):
                    change[field] = moment
            quantity = form.get("quantity", "").strip()
            if quantity and quantity != str(event["quantity"]):
                change["quantity"] = quantity
            if change:
                await api.patch(f"/admin/coupon-events/{event_id}", change)
    except ApiProblem as problem:
        return await _refusal_page(
            request, visitor, event_id, problem, form, errors_of(problem, EVENT_FIELDS)
        )
    return go(request, visitor, f"/admin/coupon-events/{event_id}")


@router.post("/admin/coupon-events/{event_id}/close", response_class=HTMLResponse)
async def close_event(request: Request, event_id: str) -> Response:
    _, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/coupon-events/{event_id}", {"status": "CLOSED"})
    except ApiProblem as problem:
        return await _refusal_page(
            request, visitor, event_id, problem, None, {"close": problem.message()}
        )
    return go(request, visitor, f"/admin/coupon-events/{event_id}")


async def _refusal_page(
    request: Request,
    visitor: Visitor,
    event_id: str,
    problem: ApiProblem,
    form: dict[str, str] | None,
    errors: dict[str, str],
) -> Response:
    """An event's form refused: its page again, the reason beside what was refused (an unknown
    event is a 404; other problems are not the form's)."""
    if (page := triage(request, visitor, problem)) is not None:
        return page
    return await _event(
        request,
        visitor,
        event_id,
        "admin_event.html",
        form=form,
        errors=errors,
        status=problem.status,
    )

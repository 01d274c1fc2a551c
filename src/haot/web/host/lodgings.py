"""Host lodgings (SPEC: ``/host/lodgings``, ``/host/lodgings/{id}``): my lodgings, a new one,
one lodging's page with its form and room types, and its deletion after a confirmation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.forms import posted_in_role, refused, triage
from haot.web.host.common import PAGE_SIZE, ROLES, delete_form, host_errors, lodging_of
from haot.web.host.lodging_forms import (
    LODGING_FIELDS,
    ROOM_TYPE_FIELDS,
    lodging_body,
    lodging_form,
    posted_lodging_form,
)
from haot.web.pages import html_error, render, visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)


@router.get("/host/lodgings", response_class=HTMLResponse)
async def my_lodgings(request: Request, page: int = 1) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    async with Api(request, token=visitor.token) as api:
        found = await api.get("/host/lodgings", {"page": max(1, page), "size": PAGE_SIZE})
    return render(request, "host_lodgings.html", visitor=visitor, found=found, section="lodgings")


# Before /host/lodgings/{lodging_id}: "new" is no lodging's id.
@router.get("/host/lodgings/new", response_class=HTMLResponse)
async def new_lodging_page(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return render(
        request,
        "host_lodging_new.html",
        visitor=visitor,
        form=lodging_form(None),
        errors={},
        section="lodgings",
    )


@router.post("/host/lodgings/new", response_class=HTMLResponse)
async def create_lodging(request: Request) -> Response:
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            created = await api.post("/host/lodgings", lodging_body(posted))
    except ApiProblem as problem:
        if not refused(problem):
            raise
        return render(
            request,
            "host_lodging_new.html",
            status=problem.status,
            visitor=visitor,
            form=posted_lodging_form(posted),
            errors=host_errors(problem, LODGING_FIELDS),
            section="lodgings",
        )
    return go(request, visitor, f"/host/lodgings/{created['id']}")


@router.get("/host/lodgings/{lodging_id}", response_class=HTMLResponse)
async def lodging_page(request: Request, lodging_id: str) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await show_lodging(request, visitor, lodging_id)


async def show_lodging(
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
    async with Api(request, token=visitor.token) as api:
        lodging = await lodging_of(api, lodging_id)
    if lodging is None:
        return html_error(request, 404, visitor=visitor)
    posted = posted or {}
    form = posted_lodging_form(posted) if failed == "lodging" else lodging_form(lodging)
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
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/host/lodgings/{lodging_id}", lodging_body(posted))
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        errors = host_errors(problem, LODGING_FIELDS)
        return await show_lodging(
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
    async with Api(request, token=visitor.token) as api:
        lodging = await lodging_of(api, lodging_id)
    if lodging is None:
        return html_error(request, 404, visitor=visitor)
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
    async def again(visitor: Visitor, errors: dict[str, str]) -> Response:
        return await _delete_page(request, visitor, lodging_id, errors=errors, status=409)

    return await delete_form(request, f"/host/lodgings/{lodging_id}", "/host/lodgings", again)

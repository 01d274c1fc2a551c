"""Host room types, on their lodging's page (SPEC: ``/host/lodgings/{id}``): add one, edit one,
delete one; a refusal shows that form again on the lodging's page with the reason."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.forms import posted_in_role, triage
from haot.web.host.common import ROLES, delete_form, host_errors
from haot.web.host.lodging_forms import ROOM_TYPE_FIELDS
from haot.web.host.lodgings import show_lodging
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)


@router.post("/host/lodgings/{lodging_id}/room-types", response_class=HTMLResponse)
async def add_room_type(request: Request, lodging_id: str) -> Response:
    return await _save_room_type(request, lodging_id, None)


@router.post("/host/lodgings/{lodging_id}/room-types/{room_type_id}", response_class=HTMLResponse)
async def update_room_type(request: Request, lodging_id: str, room_type_id: str) -> Response:
    return await _save_room_type(request, lodging_id, room_type_id)


async def _save_room_type(request: Request, lodging_id: str, room_type_id: str | None) -> Response:
    """Add a room type to the lodging (``room_type_id`` None) or change one of its room types."""
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    body = {name: posted.get(name, "").strip() for name in ROOM_TYPE_FIELDS}
    try:
        async with Api(request, token=visitor.token) as api:
            if room_type_id is None:
                await api.post(f"/host/lodgings/{lodging_id}/room-types", body)
            else:
                await api.patch(f"/host/room-types/{room_type_id}", body)
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        return await show_lodging(
            request,
            visitor,
            lodging_id,
            failed=room_type_id or "new-room-type",
            posted=posted,
            errors=host_errors(problem, ROOM_TYPE_FIELDS),
            status=problem.status,
        )
    return go(request, visitor, f"/host/lodgings/{lodging_id}?saved=room-types#room-types")


@router.post(
    "/host/lodgings/{lodging_id}/room-types/{room_type_id}/delete", response_class=HTMLResponse
)
async def delete_room_type(request: Request, lodging_id: str, room_type_id: str) -> Response:
    async def again(visitor: Visitor, errors: dict[str, str]) -> Response:
        return await show_lodging(
            request, visitor, lodging_id, failed=room_type_id, errors=errors, status=409
        )

    path, done = f"/host/room-types/{room_type_id}", f"/host/lodgings/{lodging_id}#room-types"
    return await delete_form(request, path, done, again)

"""Admin users (SPEC: ``/admin/users``): the list by name, e-mail or role, a role change and an
(de)activation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.admin.common import PAGE_SIZE, admin_render, listed
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import (
    back_to,
    errors_of,
    page_number,
    pages,
    posted_in_role,
    query_of,
    triage,
)
from haot.web.pages import visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
ROLES = ("USER", "HOST", "ADMIN")


@router.get("/admin/users", response_class=HTMLResponse)
async def users(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _users(request, visitor, dict(request.query_params), errors={})


async def _users(
    request: Request,
    visitor: Visitor,
    wanted: dict[str, str],
    *,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    wanted = {
        "q": wanted.get("q", ""),
        "role": wanted.get("role", "") if wanted.get("role") in ROLES else "",
        "page": wanted.get("page", "1"),
    }
    params = {
        "q": wanted["q"],
        "role": wanted["role"],
        "page": page_number(wanted["page"]),
        "size": PAGE_SIZE,
    }
    found, filter_errors = await listed(request, visitor, "/admin/users", params, ("q", "role"))
    if filter_errors:
        errors, status = errors | filter_errors, 422
    here = "/admin/users?" + urlencode({k: v for k, v in wanted.items() if v})
    return admin_render(
        request,
        "admin_users.html",
        visitor,
        status=status,
        section="users",
        wanted=wanted,
        found=found,
        pages=pages(found, "/admin/users", wanted),
        errors=errors,
        back=here,
        roles=ROLES,
    )


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def change_user(request: Request, user_id: str) -> Response:
    """A role change or an (de)activation, whichever form was sent."""
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    back = back_to(form, "/admin", "/admin/users")
    change: dict[str, Any] = {}
    if "role" in form:
        change["role"] = form["role"]
    if "active" in form:
        change["active"] = form["active"] == "true"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/users/{user_id}", change)
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        errors = errors_of(problem, ("role", "active"), key="{}-" + user_id)
        return await _users(request, visitor, query_of(back), errors=errors, status=problem.status)
    return go(request, visitor, back)

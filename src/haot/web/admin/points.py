"""Admin points (SPEC: ``/admin/points``): a user's balance and the ledger by user and entry
type, with the grant and the deduction forms."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.admin.common import EMPTY, PAGE_SIZE, admin_render
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import errors_of, from_local, given, page_number, pages, posted_in_role, refused
from haot.web.pages import visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
ENTRY_TYPES = ("EARN", "USE", "CANCEL_USE", "EXPIRE", "ADMIN_GRANT", "ADMIN_DEDUCT")


@router.get("/admin/points", response_class=HTMLResponse)
async def points(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _points(request, visitor, dict(request.query_params), forms={}, errors={})


async def _points(
    request: Request,
    visitor: Visitor,
    wanted: dict[str, str],
    *,
    forms: dict[str, dict[str, str]],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    user_id = wanted.get("user_id", "").strip()
    kind = wanted.get("type", "") if wanted.get("type") in ENTRY_TYPES else ""
    page = page_number(wanted.get("page"))
    wanted = {"user_id": user_id, "type": kind, "page": str(page)}
    account = balance = None
    found = EMPTY
    async with Api(request, token=visitor.token) as api:
        try:
            if user_id:
                one = quote(user_id, safe="")  # typed in a search box: one path segment
                balance = await api.get(f"/admin/points/users/{one}")
                try:
                    account = await api.get(f"/admin/users/{one}")
                except ApiProblem as problem:
                    if problem.status != 404:
                        raise
            params = {"user_id": user_id, "type": kind, "page": page, "size": PAGE_SIZE}
            found = await api.get("/admin/points", params)
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            errors = errors | errors_of(problem, ("user_id", "type"), key="search-{}")
            status = 422
    searched = {"user_id": user_id}
    return admin_render(
        request,
        "admin_points.html",
        visitor,
        status=status,
        section="points",
        wanted=wanted,
        account=account,
        balance=balance,
        found=found,
        pages=pages(found, "/admin/points", wanted),
        grant=forms.get("grant", searched),
        deduct=forms.get("deduct", searched),
        errors=errors,
    )


@router.post("/admin/points/grants", response_class=HTMLResponse)
async def grant_points(request: Request) -> Response:
    return await _move_points(request, "grant")


@router.post("/admin/points/deductions", response_class=HTMLResponse)
async def deduct_points(request: Request) -> Response:
    return await _move_points(request, "deduct")


async def _move_points(request: Request, kind: str) -> Response:
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    body: dict[str, Any] = given(form, "user_id", "amount", "reason")
    if kind == "grant" and (expires_at := from_local(form.get("expires_at"))):
        body["expires_at"] = expires_at
    path = "/admin/points/grants" if kind == "grant" else "/admin/points/deductions"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(path, body)
    except ApiProblem as problem:
        if not refused(problem):
            raise
        fields = ("user_id", "amount", "reason", "expires_at")
        errors = errors_of(problem, fields, key=kind + "-{}")
        wanted = {"user_id": form.get("user_id", "")}
        return await _points(
            request, visitor, wanted, forms={kind: form}, errors=errors, status=problem.status
        )
    return go(request, visitor, "/admin/points?" + urlencode({"user_id": body.get("user_id", "")}))

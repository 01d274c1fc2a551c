"""Admin coupon templates (SPEC: ``/admin/coupons``): the list, a new template, its edit (name,
end of validity, on or off) and handing it to users directly."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.platform.clock import utcnow
from haot.web.admin.common import PAGE_SIZE, admin_render, listed
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import (
    back_to,
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
from haot.web.pages import visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
COUPON_FIELDS = (
    "name",
    "discount_type",
    "discount_value",
    "max_discount",
    "min_order_amount",
    "valid_from",
    "valid_to",
    "lodging_id",
)


@router.get("/admin/coupons", response_class=HTMLResponse)
async def coupons(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _coupons(request, visitor, form=None, errors={})


def _new_coupon() -> dict[str, str]:
    now = utcnow()
    return {
        "discount_type": "FIXED",
        "min_order_amount": "0",
        "valid_from": to_local(now.isoformat()),
        "valid_to": to_local((now + timedelta(days=30)).isoformat()),
    }


async def _coupons(
    request: Request,
    visitor: Visitor,
    *,
    form: dict[str, str] | None,
    errors: dict[str, str],
    status: int = 200,
    opened: str = "",
) -> Response:
    wanted = {
        "q": request.query_params.get("q", ""),
        "page": page_number(request.query_params.get("page")),
    }
    params = wanted | {"size": PAGE_SIZE}
    found, filter_errors = await listed(
        request, visitor, "/admin/coupons", params, ("q",), key="coupon-{}"
    )
    if filter_errors:
        errors, status = errors | filter_errors, 422
    issued = request.query_params.get("issued", "")
    return admin_render(
        request,
        "admin_coupons.html",
        visitor,
        status=status,
        section="coupons",
        wanted=wanted,
        found=found,
        pages=pages(found, "/admin/coupons", wanted),
        form=form or _new_coupon(),
        errors=errors,
        opened=opened,
        issued=int(issued) if issued.isdigit() else None,
        back="/admin/coupons?" + urlencode({k: v for k, v in wanted.items() if v}),
    )


@router.post("/admin/coupons", response_class=HTMLResponse)
async def create_coupon(request: Request) -> Response:
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    body: dict[str, Any] = given(
        form,
        "name",
        "discount_type",
        "discount_value",
        "max_discount",
        "min_order_amount",
        "lodging_id",
    )
    for name in ("valid_from", "valid_to"):
        if moment := from_local(form.get(name)):
            body[name] = moment
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post("/admin/coupons", body)
    except ApiProblem as problem:
        if not refused(problem):
            raise
        errors = errors_of(problem, COUPON_FIELDS)
        return await _coupons(request, visitor, form=form, errors=errors, status=problem.status)
    return go(request, visitor, "/admin/coupons")


@router.post("/admin/coupons/{coupon_id}", response_class=HTMLResponse)
async def change_coupon(request: Request, coupon_id: str) -> Response:
    """Edit a template: its name, its end of validity, on or off."""
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    change: dict[str, Any] = given(form, "name")
    if valid_to := from_local(form.get("valid_to")):
        change["valid_to"] = valid_to
    if form.get("active") in ("true", "false"):
        change["active"] = form["active"] == "true"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/coupons/{coupon_id}", change)
    except ApiProblem as problem:
        return await _refusal_page(
            request, visitor, coupon_id, problem, ("name", "valid_to", "active")
        )
    return go(request, visitor, back_to(form, "/admin", "/admin/coupons"))


@router.post("/admin/coupons/{coupon_id}/issue", response_class=HTMLResponse)
async def issue_coupon(request: Request, coupon_id: str) -> Response:
    """Hand the coupon to users directly: their ids, separated by spaces, commas or lines."""
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    user_ids = [part for part in re.split(r"[\s,]+", form.get("user_ids", "")) if part]
    try:
        async with Api(request, token=visitor.token) as api:
            answer = await api.post(f"/admin/coupons/{coupon_id}/issue", {"user_ids": user_ids})
    except ApiProblem as problem:
        return await _refusal_page(request, visitor, coupon_id, problem, ("user_ids",))
    back = back_to(form, "/admin", "/admin/coupons")
    joiner = "&" if "?" in back else "?"
    return go(request, visitor, f"{back}{joiner}issued={len(answer['issued'])}")


async def _refusal_page(
    request: Request,
    visitor: Visitor,
    coupon_id: str,
    problem: ApiProblem,
    fields: tuple[str, ...],
) -> Response:
    """A template's form refused: the list again, that template's forms open with the reason
    beside their fields (an unknown template is a 404; other problems are not the form's)."""
    if (page := triage(request, visitor, problem)) is not None:
        return page
    errors = errors_of(problem, fields, key="{}-" + coupon_id)
    return await _coupons(
        request, visitor, form=None, errors=errors, status=problem.status, opened=coupon_id
    )

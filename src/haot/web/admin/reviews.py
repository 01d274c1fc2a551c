"""Admin reviews (issue 14; ``/admin/reviews``): every review, newest first, by lodging and by
whether it is hidden, with its author, host and status; a review hidden with a reason (it leaves
the lodging's rating) or shown again."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.admin.common import PAGE_SIZE, admin_render, listed
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import back_to, errors_of, page_number, pages, posted_in_role, query_of, triage
from haot.web.pages import visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
HERE = "/admin/reviews"
# The list's filter of hidden reviews, as the API's ``hidden`` takes it ("": every review).
HIDDEN = ("true", "false")


@router.get("/admin/reviews", response_class=HTMLResponse)
async def reviews(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _reviews(request, visitor, dict(request.query_params), errors={})


async def _reviews(
    request: Request,
    visitor: Visitor,
    wanted: dict[str, str],
    *,
    errors: dict[str, str],
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """A page of every review by the filters ``wanted``; after a refused moderation the reason
    ``typed`` (by review id) and the refusal beside it."""
    wanted = {
        "hidden": wanted.get("hidden", "") if wanted.get("hidden") in HIDDEN else "",
        "lodging_id": wanted.get("lodging_id", "").strip(),
        "page": str(page_number(wanted.get("page"))),
    }
    params: dict[str, Any] = {
        "hidden": wanted["hidden"],
        "lodging_id": wanted["lodging_id"],
        "page": int(wanted["page"]),
        "size": PAGE_SIZE,
    }
    filters = ("lodging_id", "hidden")
    found, filter_errors = await listed(
        request, visitor, "/admin/reviews", params, filters, key="search-{}"
    )
    if filter_errors:
        errors, status = errors | filter_errors, 422
    return admin_render(
        request,
        "admin_reviews.html",
        visitor,
        status=status,
        section="reviews",
        wanted=wanted,
        found=found,
        pages=pages(found, HERE, wanted),
        errors=errors,
        typed=typed or {},
        back=f"{HERE}?{urlencode({k: v for k, v in wanted.items() if v})}",
    )


@router.post("/admin/reviews/{review_id}", response_class=HTMLResponse)
async def moderate(request: Request, review_id: str) -> Response:
    """Hide a review (the API wants a reason) or show it again, whichever form was sent."""
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
    if refusal:
        return refusal
    back = back_to(form, f"{HERE}?", HERE)
    hide = form.get("hidden") == "true"
    body: dict[str, Any] = {"hidden": hide}
    if hide:
        body["reason"] = form.get("reason", "")
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/reviews/{quote(review_id, safe='')}", body)
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        errors = errors_of(problem, ("reason", "hidden"), key="{}-" + review_id)
        return await _reviews(
            request,
            visitor,
            query_of(back),
            errors=errors,
            typed={review_id: form.get("reason", "")},
            status=problem.status,
        )
    return go(request, visitor, back)

"""Reviews of my lodgings (issue 14; ``/host/reviews``): newest first, by lodging, hidden ones
marked with the administrator's reason, and the host's reply to each, written, replaced or
removed. The API decides who may answer what; the page shows its answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.forms import back_to, page_link, page_number, pages, posted_in_role, query_of, triage
from haot.web.host.common import PAGE_SIZE, ROLES, host_errors
from haot.web.pages import render, visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
HERE = "/host/reviews"
# The lodgings a filter offers by name: the API's largest page of my lodgings (a host with more
# still filters by the link on each review).
LODGINGS_LISTED = 100


@router.get("/host/reviews", response_class=HTMLResponse)
async def host_reviews(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await _reviews(request, visitor, dict(request.query_params))


async def _reviews(
    request: Request,
    visitor: Visitor,
    wanted: dict[str, str],
    *,
    failed: str = "",
    typed: str = "",
    errors: dict[str, str] | None = None,
    answer: int = 200,
) -> Response:
    """Reviews of my lodgings, newest first, of one lodging when ``lodging_id`` says so; after a
    refused reply (``failed``: its review) the text ``typed`` and the reason why beside it."""
    chosen = {"lodging_id": wanted.get("lodging_id", "").strip()}
    params: dict[str, Any] = chosen | {"page": page_number(wanted.get("page")), "size": PAGE_SIZE}
    async with Api(request, token=visitor.token) as api:
        try:
            found = await api.get("/host/reviews", params)
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            chosen["lodging_id"] = ""  # a broken lodging in the link: all my lodgings instead
            found = await api.get("/host/reviews", params | {"lodging_id": ""})
        lodgings = await api.get("/host/lodgings", {"page": 1, "size": LODGINGS_LISTED})
    links = pages(found, HERE, chosen)
    return render(
        request,
        "host_reviews.html",
        status=answer,
        visitor=visitor,
        found=found,
        chosen=chosen,
        names={lodging["id"]: lodging["name"] for lodging in lodgings["items"]},
        back=page_link(HERE, chosen, int(found["page"])),
        newer=links["previous"] or "",
        older=links["next"] or "",
        failed=failed,
        typed=typed,
        errors=errors or {},
        section="reviews",
    )


@router.post("/host/reviews/{review_id}/reply", response_class=HTMLResponse)
async def reply(request: Request, review_id: str) -> Response:
    """The host answers a review of their lodging; a second answer replaces the first."""
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    text = posted.get("text", "")
    back = back_to(posted, f"{HERE}?", HERE)
    try:
        async with Api(request, token=visitor.token) as api:
            await api.put(f"/reviews/{quote(review_id, safe='')}/reply", {"text": text})
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        return await _reviews(  # the reply, refused (empty, too long): shown beside it
            request,
            visitor,
            query_of(back),
            failed=review_id,
            typed=text,
            errors=host_errors(problem, ("text",)),
            answer=problem.status,
        )
    return go(request, visitor, back)


@router.post("/host/reviews/{review_id}/reply/delete", response_class=HTMLResponse)
async def remove_reply(request: Request, review_id: str) -> Response:
    """The host takes their reply back."""
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    back = back_to(posted, f"{HERE}?", HERE)
    try:
        async with Api(request, token=visitor.token) as api:
            await api.delete(f"/reviews/{quote(review_id, safe='')}/reply")
    except ApiProblem as problem:
        if (page := triage(request, visitor, problem)) is not None:
            return page
        return await _reviews(
            request,
            visitor,
            query_of(back),
            failed=review_id,
            errors={"form": problem.message()},
            answer=problem.status,
        )
    return go(request, visitor, back)

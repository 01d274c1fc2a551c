"""Guest pages for reviews: write the review of a completed stay from its reservation page, edit
or delete it within the window, and read a lodging's reviews (SPEC: ``[data-testid=review]``
items). Every rule is the API's; the page shows its answer."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.booking import reservation_view
from haot.web.forms import errors_of, page_number, pages
from haot.web.pages import html_error, render
from haot.web.session import Visitor, check_csrf, go, login_first, visitor_of

router = APIRouter(include_in_schema=False)
FIELDS = ("rating", "text", "image_urls")
SORTS = ("newest", "rating", "-rating")
PAGE_SIZE = 10
_ID = re.compile(r"^[0-9a-fA-F-]{32,36}$")


def review_body(form: dict[str, str]) -> dict[str, Any]:
    """The review form as the API takes it: image URLs one per line; a rating that is not a
    number goes as typed, for the API to refuse beside its field."""
    rating = form.get("rating", "").strip()
    return {
        "rating": int(rating) if rating.isdigit() else rating or None,
        "text": form.get("text", ""),
        "image_urls": [
            line.strip() for line in form.get("image_urls", "").splitlines() if line.strip()
        ],
    }


async def _refused(
    request: Request,
    visitor: Visitor,
    reservation_id: str,
    form: dict[str, str],
    problem: ApiProblem,
) -> Response:
    if problem.status == 404:
        return html_error(request, 404, visitor=visitor)
    if problem.status not in (409, 422):
        raise problem
    return await reservation_view(
        request,
        visitor,
        reservation_id,
        review_form={name: form.get(name, "") for name in FIELDS},
        review_errors=errors_of(problem, FIELDS),
        status=problem.status,
    )


@router.post("/reservations/{reservation_id}/review", response_class=HTMLResponse)
async def write_review(request: Request, reservation_id: str) -> Response:
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(f"/reservations/{reservation_id}/review", review_body(form))
    except ApiProblem as problem:
        if problem.code in ("reservation_not_found", "stay_not_completed"):
            # The form is only on a completed stay's page, and that page still 404s for someone
            # else's reservation: for the guest's own, the review context has not yet heard of
            # the completion (moments behind, through the reservation's events).
            problem = ApiProblem(
                status=409, code="not_yet", detail="not_yet", language=problem.language
            )
        return await _refused(request, visitor, reservation_id, form, problem)
    return go(request, visitor, f"/reservations/{reservation_id}#review")


@router.post("/reviews/{review_id}/edit", response_class=HTMLResponse)
async def edit_review(request: Request, review_id: str) -> Response:
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    reservation_id = form.get("reservation_id", "")
    if not _ID.match(reservation_id):
        return html_error(request, 404, visitor=visitor)
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/reviews/{review_id}", review_body(form))
    except ApiProblem as problem:
        return await _refused(request, visitor, reservation_id, form, problem)
    return go(request, visitor, f"/reservations/{reservation_id}#review")


@router.post("/reviews/{review_id}/delete", response_class=HTMLResponse)
async def delete_review(request: Request, review_id: str) -> Response:
    """Deleting is for good (no second review of the stay): the form asks to confirm it."""
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    reservation_id = form.get("reservation_id", "")
    if not _ID.match(reservation_id):
        return html_error(request, 404, visitor=visitor)
    if form.get("confirm") != "yes":
        return await reservation_view(
            request,
            visitor,
            reservation_id,
            review_errors={"confirm": "required"},
            status=422,
        )
    try:
        async with Api(request, token=visitor.token) as api:
            await api.delete(f"/reviews/{review_id}")
    except ApiProblem as problem:
        return await _refused(request, visitor, reservation_id, form, problem)
    return go(request, visitor, f"/reservations/{reservation_id}#review")


@router.get("/lodgings/{lodging_id}/reviews", response_class=HTMLResponse)
async def lodging_reviews(request: Request, lodging_id: str, sort: str = "newest") -> Response:
    visitor = await visitor_of(request)
    sort = sort if sort in SORTS else "newest"
    page = page_number(request.query_params.get("page"))
    try:
        async with Api(request, token=visitor.token) as api:
            lodging = await api.get(f"/lodgings/{lodging_id}")
            found = await api.get(
                f"/lodgings/{lodging_id}/reviews", {"sort": sort, "page": page, "size": PAGE_SIZE}
            )
    except ApiProblem as problem:
        if problem.status in (404, 422):
            return html_error(request, 404, visitor=visitor)
        raise
    here = f"/lodgings/{lodging_id}/reviews"
    return render(
        request,
        "lodging_reviews.html",
        visitor=visitor,
        lodging=lodging,
        found=found,
        sort=sort,
        sorts=SORTS,
        links=pages(found, here, {"sort": sort}),
    )

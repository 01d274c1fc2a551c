"""Booking pages: the booking page (quote, coupon, points, amount, pay), the payment's return,
and the reservation page whose status follows the payment without a reload (SPEC: ``/book``,
``/reservations/{id}``). Every rule is the API's; the page shows its answer."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haot.platform.clock import seoul_today
from haot.web.api_client import Api, ApiProblem
from haot.web.pages import html_error, render
from haot.web.session import Visitor, check_csrf, login_first, visitor_of

router = APIRouter(include_in_schema=False)
STAY = ("room_type_id", "check_in", "check_out", "guests")
FINAL = frozenset({"CONFIRMED", "FAILED", "CANCELLED", "EXPIRED", "COMPLETED"})


def _stay_request(values: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {key: values.get(key, "") for key in STAY}
    if values.get("user_coupon_id"):
        body["user_coupon_id"] = values["user_coupon_id"]
    points = values.get("points", "").strip()
    body["points"] = points if points else 0
    return body


@router.get("/book", response_class=HTMLResponse)
async def booking_page(request: Request) -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    wanted = dict(request.query_params)
    return await _show(request, visitor, wanted, errors={})


async def _show(
    request: Request,
    visitor: Visitor,
    wanted: dict[str, str],
    *,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    quote: dict[str, Any] | None = None
    async with Api(request, token=visitor.token) as api:
        coupons = await api.get("/coupons", {"status": "ISSUED", "size": 100})
        balance = await api.get("/points")
        try:
            quote = await api.post("/reservations/quote", _stay_request(wanted))
        except ApiProblem as problem:
            if problem.status not in (404, 409, 422):
                raise
            fields = problem.field_errors()
            if any(name in fields for name in STAY):  # no stay chosen yet (or a broken link)
                errors = errors or {"stay": "missing"}
            else:
                errors = errors or fields or {"form": problem.message()}
            status = status if status != 200 else problem.status
    return render(
        request,
        "book.html",
        status=status,
        visitor=visitor,
        wanted=wanted,
        quote=quote,
        coupons=coupons["items"],
        balance=balance,
        errors=errors,
        # One key per booking page: pressing "pay" twice books once (ADR 0016).
        idempotency_key=wanted.get("idempotency_key") or uuid.uuid4().hex,
    )


@router.post("/book", response_class=HTMLResponse)
async def book(request: Request) -> Response:
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    if form.get("action") != "pay":  # "update the amount": the quote for the new choices
        return await _show(request, visitor, form, errors={})
    key = form.get("idempotency_key", "")
    try:
        async with Api(request, token=visitor.token) as api:
            created = await api.post(
                "/reservations", _stay_request(form), headers={"Idempotency-Key": key}
            )
    except ApiProblem as problem:
        if problem.status not in (404, 409, 422, 429):
            raise
        errors = problem.field_errors() or {"form": problem.message()}
        # The refused attempt is over: pressing "pay" again is a new booking and needs a key of
        # its own (under the old one, a booking the saga recorded as FAILED would be answered
        # again). Not while the first request with the key still runs: it may yet book.
        again = (
            form if problem.code == "idempotency_key_in_flight" else form | {"idempotency_key": ""}
        )
        return await _show(request, visitor, again, errors=errors, status=problem.status)
    target = created.get("checkout_url") or f"/reservations/{created['id']}"
    return visitor.apply(request, RedirectResponse(target, status_code=303))


@router.get("/reservations", response_class=HTMLResponse)
async def my_reservations(request: Request, page: int = 1) -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    async with Api(request, token=visitor.token) as api:
        found = await api.get("/reservations", {"page": max(1, page), "size": 20})
    return render(request, "reservations.html", visitor=visitor, found=found)


@router.get("/reservations/{reservation_id}", response_class=HTMLResponse)
async def reservation_page(request: Request, reservation_id: str) -> Response:
    return await _reservation(request, reservation_id, "reservation.html")


@router.get("/reservations/{reservation_id}/status", response_class=HTMLResponse)
async def reservation_status(request: Request, reservation_id: str) -> Response:
    """The status block alone: what the page polls (htmx) until the status is final."""
    return await _reservation(request, reservation_id, "_reservation_status.html")


async def _reservation(request: Request, reservation_id: str, template: str) -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    return await reservation_view(request, visitor, reservation_id, template)


async def reservation_view(
    request: Request,
    visitor: Visitor,
    reservation_id: str,
    template: str = "reservation.html",
    *,
    review_form: dict[str, str] | None = None,
    review_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The reservation page (or its status block), with what cancelling would refund while it can
    be cancelled, and the guest's review once the stay is completed: the form to write it, or
    the review with its own forms (``review_form``, ``review_errors``: a refused one, again)."""
    terms = review = None
    try:
        async with Api(request, token=visitor.token) as api:
            reservation = await api.get(f"/reservations/{reservation_id}")
            if reservation["status"] in ("PENDING", "CONFIRMED"):
                # What cancelling now would refund, shown before the guest decides.
                with contextlib.suppress(ApiProblem):  # 409: no longer cancellable
                    terms = await api.get(f"/reservations/{reservation_id}/cancellation")
            if reservation["status"] == "COMPLETED" and template == "reservation.html":
                with contextlib.suppress(ApiProblem):  # 404: not reviewed (or deleted)
                    review = await api.get(f"/reservations/{reservation_id}/review")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        raise
    page = render(
        request,
        template,
        status=status,
        visitor=visitor,
        reservation=reservation,
        terms=terms,
        final=reservation["status"] in FINAL,
        review=review,
        today=seoul_today().isoformat(),
        review_form=review_form or _review_form(review),
        review_errors=review_errors or {},
    )
    if request.query_params.get("was", reservation["status"]) != reservation["status"]:
        # The status moved on: the whole page changes with it (what cancelling would refund).
        page.headers["HX-Refresh"] = "true"
    return page


def _review_form(review: dict[str, Any] | None) -> dict[str, str]:
    if review is None:
        return {"rating": "", "text": "", "image_urls": ""}
    return {
        "rating": str(review["rating"]),
        "text": review["text"],
        "image_urls": "\n".join(review["image_urls"]),
    }


@router.post("/reservations/{reservation_id}/cancel")
async def cancel(request: Request, reservation_id: str) -> Response:
    await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(f"/reservations/{reservation_id}/cancel", {})
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404)
        if problem.status != 409:
            raise
        # Paid or started meanwhile: the page shows where it stands now.
    target = f"/reservations/{reservation_id}"
    return visitor.apply(request, RedirectResponse(target, status_code=303))

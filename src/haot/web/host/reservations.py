"""Reservations of my lodgings (SPEC: ``/host/reservations``): by status and lodging, newest
first, with the host's cancellation (the API refunds the guest in full)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.forms import back_to, page_link, page_number, pages, posted_in_role, query_of
from haot.web.host.common import PAGE_SIZE, ROLES, host_errors
from haot.web.pages import html_error, render, visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
HERE = "/host/reservations"
CANCELLABLE = frozenset({"PENDING", "CONFIRMED"})
STATUSES = ("PENDING", "CONFIRMED", "COMPLETED", "CANCELLED", "EXPIRED", "FAILED")


@router.get("/host/reservations", response_class=HTMLResponse)
async def host_reservations(
    request: Request, page: int = 1, status: str = "", lodging_id: str = ""
) -> Response:
    visitor, refusal = await visitor_in_role(request, *ROLES)
    if refusal:
        return refusal
    return await _reservations(request, visitor, page, status, lodging_id)


async def _reservations(
    request: Request,
    visitor: Visitor,
    page: int,
    status: str,
    lodging_id: str,
    *,
    failed: str = "",
    errors: dict[str, str] | None = None,
    answer: int = 200,
) -> Response:
    """Reservations of my lodgings, newest first, with a status (and lodging) filter; after a
    refused cancellation (``failed``: its reservation) the reason why beside its button."""
    chosen = {"status": status if status in STATUSES else "", "lodging_id": lodging_id}
    params = chosen | {"page": max(1, page), "size": PAGE_SIZE}
    async with Api(request, token=visitor.token) as api:
        try:
            found = await api.get("/host/reservations", params)
        except ApiProblem as problem:
            if problem.status != 422:
                raise
            chosen["lodging_id"] = ""  # a broken lodging in the link: all my lodgings instead
            found = await api.get("/host/reservations", params | {"lodging_id": ""})
    links = pages(found, HERE, chosen)
    return render(
        request,
        "host_reservations.html",
        status=answer,
        visitor=visitor,
        found=found,
        chosen=chosen,
        statuses=STATUSES,
        cancellable=CANCELLABLE,
        back=page_link(HERE, chosen, int(found["page"])),
        newer=links["previous"] or "",
        older=links["next"] or "",
        failed=failed,
        errors=errors or {},
        section="reservations",
    )


@router.post("/host/reservations/{reservation_id}/cancel", response_class=HTMLResponse)
async def cancel_reservation(request: Request, reservation_id: str) -> Response:
    """The host cancels a reservation of their lodging (the API refunds the guest in full)."""
    posted, visitor, refusal = await posted_in_role(request, *ROLES)
    if refusal:
        return refusal
    reason = posted.get("reason", "").strip()
    back = back_to(posted, f"{HERE}?", HERE)
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(
                f"/host/reservations/{reservation_id}/cancel", {"reason": reason} if reason else {}
            )
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status == 422:  # the reason, refused: shown beside it
            wanted = query_of(back)
            return await _reservations(
                request,
                visitor,
                page_number(wanted.get("page")),
                wanted.get("status", ""),
                wanted.get("lodging_id", ""),
                failed=reservation_id,
                errors=host_errors(problem, ("reason",)),
                answer=422,
            )
        if problem.status != 409:
            raise
        # Cancelled, expired or finished meanwhile: the list shows where it stands now.
    return go(request, visitor, back)

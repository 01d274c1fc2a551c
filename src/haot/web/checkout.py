"""Paying: the checkout page that opens PortOne's browser SDK, and the page PortOne (or the
built-in fake's checkout) sends the guest back to (SPEC: ``checkout_url`` and ``return_url`` name
pages that exist).

With a real PortOne, ``checkout_url`` leads here through ``/payments/{id}/checkout`` (which
pre-registers the amount): the page calls ``PortOne.requestPayment`` with the store id and channel
key from settings, and on success goes to the return page. The return page asks the API to
complete the payment (the server re-queries PortOne; the browser's word counts for nothing) and
shows the reservation, whose status then follows the payment live.
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.pages import html_error, render
from haot.web.session import go, login_first, visitor_of

router = APIRouter(include_in_schema=False)


@router.get("/checkout/{payment_id}", response_class=HTMLResponse)
async def checkout_page(request: Request, payment_id: str) -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    try:
        async with Api(request, token=visitor.token) as api:
            payment = await api.get(f"/payments/{payment_id}")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        raise
    settings = request.app.state.platform.settings
    if payment["status"] != "READY":  # paid, failed or cancelled meanwhile: nothing to pay
        return go(request, visitor, f"/reservations/{payment['reservation_id']}")
    return render(
        request,
        "checkout.html",
        visitor=visitor,
        payment=payment,
        # Built here, not taken from the query: the SDK sends the guest nowhere else.
        return_url=f"{settings.public_base_url}/payments/{payment['id']}/return",
        store_id=settings.portone_store_id,
        channel_key=settings.portone_channel_key,
        sdk_url=settings.portone_browser_sdk_url,
    )


@router.get("/payments/{payment_id}/return")
async def payment_return(request: Request, payment_id: str) -> Response:
    """Where the checkout sends the guest back: the payment completed (re-queried), then their
    reservation's page. PortOne's redirect may carry ``code`` (the guest gave up, or the card was
    refused): nothing to complete then; the reservation page says where things stand."""
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    try:
        async with Api(request, token=visitor.token) as api:
            payment = await api.get(f"/payments/{payment_id}")
            if payment["status"] == "READY" and not request.query_params.get("code"):
                # The webhook settles it too; if PortOne cannot be asked now (502/503), the
                # reservation page follows the payment until it does.
                with contextlib.suppress(ApiProblem):
                    await api.post(f"/payments/{payment_id}/complete")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        raise
    return go(request, visitor, f"/reservations/{payment['reservation_id']}")

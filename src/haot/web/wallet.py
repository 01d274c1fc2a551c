"""Guest pages around the stay: coupon events with their claim, my coupons, my points (SPEC:
``/coupon-events``, ``/coupons``, ``/points``). Every rule is the API's; the page shows its answer.

A claim is a plain form post (303 back to the events, the claim's status shown); with JavaScript
it is posted by htmx and its outcome arrives over the API's server-sent events
(``/api/v1/coupon-claims/stream``, authenticated by the session cookie), the page asking for the
claim's status once the stream is open so that an outcome issued before it opened is not missed.
"""

from __future__ import annotations

import contextlib
import math
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.platform.clock import utcnow
from haot.web.api_client import Api, ApiProblem
from haot.web.pages import html_error, render
from haot.web.session import Visitor, check_csrf, go, login_first, visitor_of

router = APIRouter(include_in_schema=False)
COUPON_STATUSES = ("ISSUED", "RESERVED", "USED", "EXPIRED")
# The API's claim states as the page names them (SPEC: PENDING, ISSUED, FAILED).
CLAIM_STATES = {"ACCEPTED": "PENDING", "ISSUED": "ISSUED", "FAILED": "FAILED"}
REFUSALS = ("coupon_sold_out", "coupon_already_claimed", "event_not_open", "rate_limited")


def _claim(claim_id: str, event_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {"claim_id": claim_id, "event_id": event_id, "status": status, "reason": reason}


def _refused(event_id: str, problem: ApiProblem) -> dict[str, Any]:
    reason = problem.code if problem.code in REFUSALS else "error"
    return _claim("", event_id, "FAILED", reason)


@router.get("/coupon-events", response_class=HTMLResponse)
async def coupon_events(request: Request, claim: str = "") -> Response:
    visitor = await visitor_of(request)
    return await _events_page(request, visitor, claim_id=claim[:80])


async def _events_page(
    request: Request,
    visitor: Visitor,
    *,
    claim_id: str = "",
    refused: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    claims: dict[str, dict[str, Any]] = {}
    # The events this answer is about: shown even when no longer listed (closed, by their end
    # or by their last coupon, the moment before).
    about = [refused["event_id"]] if refused else []
    async with Api(request, token=visitor.token) as api:
        listed = (await api.get("/coupon-events", {"size": 100}))["items"]
        if visitor.token:
            # What I hold from an event already: its claim is done (one per user).
            mine = await api.get("/coupons", {"size": 100})
            for coupon in mine["items"]:
                if coupon.get("event_id"):
                    claims[coupon["event_id"]] = _claim("", coupon["event_id"], "ISSUED")
            if claim_id:
                with contextlib.suppress(ApiProblem):  # not mine, or unknown: nothing to show
                    found = _shown(await api.get(f"/coupon-claims/{claim_id}"))
                    claims[found["event_id"]] = found
                    about.append(found["event_id"])
        if refused:
            claims[refused["event_id"]] = refused
        for event_id in about:
            if all(event["id"] != event_id for event in listed):
                with contextlib.suppress(ApiProblem):  # gone altogether: nothing to show
                    listed.append(await api.get(f"/coupon-events/{event_id}"))
    now = utcnow()
    for event in listed:
        starts = datetime.fromisoformat(event["starts_at"])
        # Rounded up: the page's countdown never reaches zero before the event opens.
        event["opens_in"] = max(0, math.ceil((starts - now).total_seconds()))
    return render(
        request,
        "coupon_events.html",
        status=status,
        visitor=visitor,
        events=listed,
        claims=claims,
    )


def _shown(claim: dict[str, Any]) -> dict[str, Any]:
    return _claim(
        claim["claim_id"], str(claim["event_id"]), CLAIM_STATES[claim["status"]], claim["reason"]
    )


@router.post("/coupon-events/{event_id}/claim", response_class=HTMLResponse)
async def claim_coupon(request: Request, event_id: str) -> Response:
    await check_csrf(request)
    visitor = await visitor_of(request)
    htmx = request.headers.get("hx-request") == "true"
    if visitor.user is None:
        if htmx:  # htmx follows a redirect inside the page: have the browser go instead
            return Response(status_code=204, headers={"HX-Redirect": "/login?next=/coupon-events"})
        return go(request, visitor, "/login?" + urlencode({"next": "/coupon-events"}))
    try:
        async with Api(request, token=visitor.token) as api:
            accepted = await api.post(f"/coupon-events/{event_id}/claims")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 429, 503):
            raise
        refused = _refused(event_id, problem)
        if htmx:  # the outcome in place (htmx swaps a 200 only)
            return render(request, "_claim_status.html", visitor=visitor, claim=refused)
        return await _events_page(request, visitor, refused=refused, status=problem.status)
    claim = _claim(accepted["claim_id"], event_id, "PENDING")
    if htmx:
        return render(request, "_claim_status.html", visitor=visitor, claim=claim)
    query = urlencode({"claim": accepted["claim_id"]})
    return go(request, visitor, f"/coupon-events?{query}#event-{event_id}")


@router.get("/coupon-claims/{claim_id}", response_class=HTMLResponse)
async def claim_status(request: Request, claim_id: str) -> Response:
    """One claim's status block: what the page swaps in when its outcome arrives."""
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    try:
        async with Api(request, token=visitor.token) as api:
            found = await api.get(f"/coupon-claims/{claim_id[:80]}")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        raise
    return render(request, "_claim_status.html", visitor=visitor, claim=_shown(found))


@router.get("/coupons", response_class=HTMLResponse)
async def my_coupons(request: Request, status: str = "", page: int = 1) -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    status = status if status in COUPON_STATUSES else ""
    async with Api(request, token=visitor.token) as api:
        found = await api.get("/coupons", {"status": status, "page": max(1, page), "size": 20})
    return render(
        request,
        "coupons.html",
        visitor=visitor,
        found=found,
        chosen=status,
        statuses=COUPON_STATUSES,
    )


@router.get("/points", response_class=HTMLResponse)
async def my_points(request: Request, page: int = 1) -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    async with Api(request, token=visitor.token) as api:
        balance = await api.get("/points")
        history = await api.get("/points/history", {"page": max(1, page), "size": 20})
    return render(request, "points.html", visitor=visitor, balance=balance, history=history)

"""Admin pages: users, coupons and coupon events (a drop watched live), points, payments and jobs
(SPEC: ``/admin``, ``/admin/coupon-events``, ``/admin/users``, ``/admin/points``). Every rule is the
API's; the page shows its answer."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from haot.platform.clock import SEOUL, utcnow
from haot.web.api_client import Api, ApiProblem
from haot.web.pages import html_error, render, visitor_in_role
from haot.web.session import Visitor, check_csrf, go

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
ROLES = ("USER", "HOST", "ADMIN")
PAYMENT_STATUSES = ("READY", "PAID", "PARTIALLY_CANCELLED", "CANCELLED", "FAILED", "DISCREPANT")
ENTRY_TYPES = ("EARN", "USE", "CANCEL_USE", "EXPIRE", "ADMIN_GRANT", "ADMIN_DEDUCT")
# The jobs SPEC lists; the API has no list of its jobs to ask.
JOBS = (
    "expire-holds",
    "complete-stays",
    "expire-points",
    "reconcile-payments",
    "reconcile-coupons",
)
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
EVENT_FIELDS = ("coupon_id", "name", "starts_at", "ends_at", "quantity", "status")
JOB_RESULT_SECONDS = 600


# Forms and the API's answers ------------------------------------------------------------------


def from_local(value: str | None) -> str | None:
    """A ``datetime-local`` input (Asia/Seoul wall time) as ISO 8601 with Seoul's offset (Korea
    keeps no daylight saving: always +09:00); empty is None. Anything else goes to the API as
    typed, for the API to refuse."""
    value = (value or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value):
        return f"{value}:00+09:00"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", value):
        return f"{value}+09:00"
    return value


def to_local(value: str | None) -> str:
    """An API timestamp as a ``datetime-local`` input shows it: Seoul wall time, to the minute."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(SEOUL).strftime("%Y-%m-%dT%H:%M")


def seoul(value: str) -> datetime:
    """An API timestamp in Asia/Seoul, for the pages to show."""
    return datetime.fromisoformat(value).astimezone(SEOUL)


def errors_of(problem: ApiProblem, fields: Iterable[str], key: str = "{}") -> dict[str, str]:
    """The API's refusal beside the form's fields (``key`` makes a field's input id, "{}-grant"
    for instance): each error goes to the field its location names, else to the first field its
    message names ("ends_at must be after starts_at"), else to the form (``key`` of "form")."""
    known = tuple(fields)
    errors: dict[str, str] = {}
    for error in problem.errors:
        message = str(error.get("message", "")) or problem.detail
        location = [str(part) for part in error.get("loc") or ()]
        name = next((part for part in location if part in known), None)
        errors.setdefault(key.format(name or _named_in(message, known) or "form"), message)
    if not errors:
        errors[key.format(_named_in(problem.detail, known) or "form")] = problem.detail or (
            problem.code
        )
    return errors


def _named_in(text: str, fields: tuple[str, ...]) -> str | None:
    return next((word for word in re.findall(r"[a-z_]+", text) if word in fields), None)


def _given(form: dict[str, str], *names: str) -> dict[str, str]:
    """The form's non-empty values of ``names`` (an empty optional field means "not given")."""
    return {name: form[name].strip() for name in names if form.get(name, "").strip()}


def _page_number(raw: str | None) -> int:
    """A list's page from the address: a number the API takes (a page past the end is empty)."""
    return min(max(1, int(raw)), 100_000) if raw and raw.isdigit() else 1


def _back(form: dict[str, str], default: str) -> str:
    """The admin list to return to after a form (a path under /admin only)."""
    target = form.get("back", "")
    return target if target.startswith("/admin") and "//" not in target else default


def _query_of(target: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(target).query))


def _pages(found: dict[str, Any], path: str, wanted: dict[str, Any]) -> dict[str, str | None]:
    """Links to the previous and next page of a list, keeping its filters."""
    page, size, total = int(found["page"]), int(found["size"]), int(found["total"])
    kept = {k: v for k, v in wanted.items() if v not in (None, "") and k != "page"}

    def link(number: int) -> str:
        return f"{path}?{urlencode(kept | {'page': number})}"

    return {
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page * size < total else None,
    }


def _admin_render(
    request: Request, template: str, visitor: Visitor, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        template,
        status=status,
        visitor=visitor,
        seoul=seoul,
        to_local=to_local,
        **context,
    )


_EMPTY: dict[str, Any] = {"items": [], "page": 1, "size": PAGE_SIZE, "total": 0}


# Dashboard ------------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return _admin_render(request, "admin_home.html", visitor, section="home")


# Users ----------------------------------------------------------------------------------------


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
        "page": _page_number(wanted["page"]),
        "size": PAGE_SIZE,
    }
    found = _EMPTY
    try:
        async with Api(request, token=visitor.token) as api:
            found = await api.get("/admin/users", params)
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        errors = errors | errors_of(problem, ("q", "role"))
        status = 422
    here = "/admin/users?" + urlencode({k: v for k, v in wanted.items() if v})
    return _admin_render(
        request,
        "admin_users.html",
        visitor,
        status=status,
        section="users",
        wanted=wanted,
        found=found,
        pages=_pages(found, "/admin/users", wanted),
        errors=errors,
        back=here,
        roles=ROLES,
    )


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def change_user(request: Request, user_id: str) -> Response:
    """A role change or an (de)activation, whichever form was sent."""
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    back = _back(form, "/admin/users")
    change: dict[str, Any] = {}
    if "role" in form:
        change["role"] = form["role"]
    if "active" in form:
        change["active"] = form["active"] == "true"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/users/{user_id}", change)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 422):
            raise
        errors = errors_of(problem, ("role", "active"), "{}-" + user_id)
        return await _users(request, visitor, _query_of(back), errors=errors, status=problem.status)
    return go(request, visitor, back)


# Coupon templates -----------------------------------------------------------------------------


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
        "page": _page_number(request.query_params.get("page")),
    }
    found = _EMPTY
    try:
        async with Api(request, token=visitor.token) as api:
            found = await api.get("/admin/coupons", wanted | {"size": PAGE_SIZE})
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        errors = errors | errors_of(problem, ("q",), "coupon-{}")
        status = 422
    issued = request.query_params.get("issued", "")
    return _admin_render(
        request,
        "admin_coupons.html",
        visitor,
        status=status,
        section="coupons",
        wanted=wanted,
        found=found,
        pages=_pages(found, "/admin/coupons", wanted),
        form=form or _new_coupon(),
        errors=errors,
        opened=opened,
        issued=int(issued) if issued.isdigit() else None,
        back="/admin/coupons?" + urlencode({k: v for k, v in wanted.items() if v}),
    )


@router.post("/admin/coupons", response_class=HTMLResponse)
async def create_coupon(request: Request) -> Response:
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    body: dict[str, Any] = _given(
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
        if problem.status not in (409, 422):
            raise
        errors = errors_of(problem, COUPON_FIELDS)
        return await _coupons(request, visitor, form=form, errors=errors, status=problem.status)
    return go(request, visitor, "/admin/coupons")


@router.post("/admin/coupons/{coupon_id}", response_class=HTMLResponse)
async def change_coupon(request: Request, coupon_id: str) -> Response:
    """Edit a template: its name, its end of validity, on or off."""
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    change: dict[str, Any] = _given(form, "name")
    if valid_to := from_local(form.get("valid_to")):
        change["valid_to"] = valid_to
    if form.get("active") in ("true", "false"):
        change["active"] = form["active"] == "true"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/coupons/{coupon_id}", change)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 422):
            raise
        errors = errors_of(problem, ("name", "valid_to", "active"), "{}-" + coupon_id)
        return await _coupons(
            request, visitor, form=None, errors=errors, status=problem.status, opened=coupon_id
        )
    return go(request, visitor, _back(form, "/admin/coupons"))


@router.post("/admin/coupons/{coupon_id}/issue", response_class=HTMLResponse)
async def issue_coupon(request: Request, coupon_id: str) -> Response:
    """Hand the coupon to users directly: their ids, separated by spaces, commas or lines."""
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    user_ids = [part for part in re.split(r"[\s,]+", form.get("user_ids", "")) if part]
    try:
        async with Api(request, token=visitor.token) as api:
            answer = await api.post(f"/admin/coupons/{coupon_id}/issue", {"user_ids": user_ids})
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 422):
            raise
        errors = errors_of(problem, ("user_ids",), "{}-" + coupon_id)
        return await _coupons(
            request, visitor, form=None, errors=errors, status=problem.status, opened=coupon_id
        )
    back = _back(form, "/admin/coupons")
    joiner = "&" if "?" in back else "?"
    return go(request, visitor, f"{back}{joiner}issued={len(answer['issued'])}")


# Coupon events --------------------------------------------------------------------------------


@router.get("/admin/coupon-events", response_class=HTMLResponse)
async def coupon_events(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _events(request, visitor, form=None, errors={})


def _new_event() -> dict[str, str]:
    start = utcnow().astimezone(SEOUL).replace(second=0, microsecond=0) + timedelta(minutes=10)
    return {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    }


async def _events(
    request: Request,
    visitor: Visitor,
    *,
    form: dict[str, str] | None,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    wanted = {"page": _page_number(request.query_params.get("page"))}
    async with Api(request, token=visitor.token) as api:
        found = await api.get("/admin/coupon-events", wanted | {"size": PAGE_SIZE})
        templates = await api.get("/admin/coupons", {"active": "true", "size": 100})
    return _admin_render(
        request,
        "admin_events.html",
        visitor,
        status=status,
        section="events",
        found=found,
        pages=_pages(found, "/admin/coupon-events", wanted),
        coupons=templates["items"],
        form=form or _new_event(),
        errors=errors,
    )


@router.post("/admin/coupon-events", response_class=HTMLResponse)
async def create_event(request: Request) -> Response:
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    body: dict[str, Any] = _given(form, "coupon_id", "name", "quantity")  # no quantity: unlimited
    for name in ("starts_at", "ends_at"):
        if moment := from_local(form.get(name)):
            body[name] = moment
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post("/admin/coupon-events", body)
    except ApiProblem as problem:
        if problem.code == "coupon_not_found":  # a template gone (or never there): the choice
            errors = {"coupon_id": problem.detail}
        elif problem.status in (409, 422):
            errors = errors_of(problem, EVENT_FIELDS)
        else:
            raise
        return await _events(request, visitor, form=form, errors=errors, status=422)
    return go(request, visitor, "/admin/coupon-events")


@router.get("/admin/coupon-events/{event_id}", response_class=HTMLResponse)
async def coupon_event(request: Request, event_id: str) -> Response:
    """One event, its issued and remaining counts following the drop without a reload."""
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _event(request, visitor, event_id, "admin_event.html", form=None, errors={})


@router.get("/admin/coupon-events/{event_id}/live", response_class=HTMLResponse)
async def coupon_event_live(request: Request, event_id: str) -> Response:
    """The counts alone: what the event's page polls (htmx)."""
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return await _event(request, visitor, event_id, "admin_event_live.html", form=None, errors={})


async def _event(
    request: Request,
    visitor: Visitor,
    event_id: str,
    template: str,
    *,
    form: dict[str, str] | None,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    try:
        async with Api(request, token=visitor.token) as api:
            event = await api.get(f"/coupon-events/{event_id}")
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        raise
    shown = form or {
        "name": event["name"],
        "starts_at": to_local(event["starts_at"]),
        "ends_at": to_local(event["ends_at"]),
        "quantity": "" if event["quantity"] is None else str(event["quantity"]),
    }
    return _admin_render(
        request,
        template,
        visitor,
        status=status,
        section="events",
        event=event,
        form=shown,
        errors=errors,
    )


@router.post("/admin/coupon-events/{event_id}", response_class=HTMLResponse)
async def change_event(request: Request, event_id: str) -> Response:
    """Edit an event: only what the form changed is sent (a started event keeps its start and
    its quantity; the API says so when asked to change them)."""
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            event = await api.get(f"/coupon-events/{event_id}")
            change: dict[str, Any] = {}
            if (name := form.get("name", "").strip()) and name != event["name"]:
                change["name"] = name
            for field in ("starts_at", "ends_at"):
                moment = from_local(form.get(field))
                if moment and form.get(field, "").strip() != to_local(event[field]):
                    change[field] = moment
            quantity = form.get("quantity", "").strip()
            if quantity and quantity != str(event["quantity"]):
                change["quantity"] = quantity
            if change:
                await api.patch(f"/admin/coupon-events/{event_id}", change)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 422):
            raise
        errors = errors_of(problem, EVENT_FIELDS)
        return await _event(
            request,
            visitor,
            event_id,
            "admin_event.html",
            form=form,
            errors=errors,
            status=problem.status,
        )
    return go(request, visitor, f"/admin/coupon-events/{event_id}")


@router.post("/admin/coupon-events/{event_id}/close", response_class=HTMLResponse)
async def close_event(request: Request, event_id: str) -> Response:
    await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    try:
        async with Api(request, token=visitor.token) as api:
            await api.patch(f"/admin/coupon-events/{event_id}", {"status": "CLOSED"})
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 422):
            raise
        errors = {"close": problem.detail}
        return await _event(
            request,
            visitor,
            event_id,
            "admin_event.html",
            form=None,
            errors=errors,
            status=problem.status,
        )
    return go(request, visitor, f"/admin/coupon-events/{event_id}")


# Points ---------------------------------------------------------------------------------------


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
    page = _page_number(wanted.get("page"))
    wanted = {"user_id": user_id, "type": kind, "page": str(page)}
    account = balance = None
    found = _EMPTY
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
            errors = errors | errors_of(problem, ("user_id", "type"), "search-{}")
            status = 422
    given = {"user_id": user_id}
    return _admin_render(
        request,
        "admin_points.html",
        visitor,
        status=status,
        section="points",
        wanted=wanted,
        account=account,
        balance=balance,
        found=found,
        pages=_pages(found, "/admin/points", wanted),
        grant=forms.get("grant", given),
        deduct=forms.get("deduct", given),
        errors=errors,
    )


@router.post("/admin/points/grants", response_class=HTMLResponse)
async def grant_points(request: Request) -> Response:
    return await _move_points(request, "grant")


@router.post("/admin/points/deductions", response_class=HTMLResponse)
async def deduct_points(request: Request) -> Response:
    return await _move_points(request, "deduct")


async def _move_points(request: Request, kind: str) -> Response:
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    body: dict[str, Any] = _given(form, "user_id", "amount", "reason")
    if kind == "grant" and (expires_at := from_local(form.get("expires_at"))):
        body["expires_at"] = expires_at
    path = "/admin/points/grants" if kind == "grant" else "/admin/points/deductions"
    try:
        async with Api(request, token=visitor.token) as api:
            await api.post(path, body)
    except ApiProblem as problem:
        if problem.status not in (409, 422):
            raise
        fields = ("user_id", "amount", "reason", "expires_at")
        errors = errors_of(problem, fields, kind + "-{}")
        wanted = {"user_id": form.get("user_id", "")}
        return await _points(
            request, visitor, wanted, forms={kind: form}, errors=errors, status=problem.status
        )
    return go(request, visitor, "/admin/points?" + urlencode({"user_id": body.get("user_id", "")}))


# Payments -------------------------------------------------------------------------------------


@router.get("/admin/payments", response_class=HTMLResponse)
async def payments(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    status_wanted = request.query_params.get("status", "")
    wanted: dict[str, Any] = {
        "status": status_wanted,
        "page": _page_number(request.query_params.get("page")),
    }
    errors: dict[str, str] = {}
    status = 200
    found = _EMPTY
    try:
        async with Api(request, token=visitor.token) as api:
            found = await api.get("/admin/payments", wanted | {"size": PAGE_SIZE})
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        errors, status = errors_of(problem, ("status",)), 422
    return _admin_render(
        request,
        "admin_payments.html",
        visitor,
        status=status,
        section="payments",
        wanted=wanted,
        found=found,
        pages=_pages(found, "/admin/payments", wanted),
        statuses=PAYMENT_STATUSES,
        errors=errors,
    )


# Jobs -----------------------------------------------------------------------------------------


def _signer(request: Request) -> URLSafeTimedSerializer:
    """Signs a job's result into the address the run redirects to, so the page shows what the
    run answered (and no link can show a made-up result)."""
    secret = request.app.state.platform.settings.jwt_secret
    return URLSafeTimedSerializer(secret, salt="haot.web.admin.jobs")


@router.get("/admin/jobs", response_class=HTMLResponse)
async def jobs(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    ran = None
    if token := request.query_params.get("ran"):
        try:
            ran = _signer(request).loads(token, max_age=JOB_RESULT_SECONDS)
        except BadSignature:
            ran = None
    return _jobs(request, visitor, ran=ran, form={}, errors={})


def _jobs(
    request: Request,
    visitor: Visitor,
    *,
    ran: dict[str, Any] | None,
    form: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return _admin_render(
        request,
        "admin_jobs.html",
        visitor,
        status=status,
        section="jobs",
        jobs=JOBS,
        ran=ran,
        form=form,
        errors=errors,
    )


@router.post("/admin/jobs/{name}/run", response_class=HTMLResponse)
async def run_job(request: Request, name: str) -> Response:
    form = await check_csrf(request)
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    query = {
        "as_of": from_local(form.get("as_of")),
        "dry_run": "true" if form.get("dry_run") else None,
    }
    query = {k: v for k, v in query.items() if v}
    path = f"/admin/jobs/{name}/run" + (f"?{urlencode(query)}" if query else "")
    try:
        async with Api(request, token=visitor.token) as api:
            answer = await api.post(path)
    except ApiProblem as problem:
        if problem.status == 404:
            return html_error(request, 404, visitor=visitor)
        if problem.status not in (409, 422):
            raise
        errors = errors_of(problem, ("as_of", "dry_run"), "{}-" + name)
        if "dry-run" in problem.detail:  # "job 'x' has no dry-run mode": the box to untick
            errors = {f"dry_run-{name}": problem.detail}
        return _jobs(
            request, visitor, ran=None, form=form | {"job": name}, errors=errors, status=422
        )
    token = _signer(request).dumps(answer)
    return go(request, visitor, f"/admin/jobs?{urlencode({'ran': token})}#job-{name}")

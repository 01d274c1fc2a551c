"""Admin operations (SPEC: ``/admin``): the dashboard, payments by status and the jobs, each run
by hand (a dry run where the job has one) with what the run answered."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from haot.web.admin.common import PAGE_SIZE, admin_render, listed
from haot.web.api_client import Api, ApiProblem
from haot.web.forms import (
    errors_of,
    from_local,
    page_number,
    pages,
    posted_in_role,
    triage,
)
from haot.web.pages import visitor_in_role
from haot.web.session import Visitor, go

router = APIRouter(include_in_schema=False)
PAYMENT_STATUSES = ("READY", "PAID", "PARTIALLY_CANCELLED", "CANCELLED", "FAILED", "DISCREPANT")
# The jobs SPEC lists; the API has no list of its jobs to ask.
JOBS = (
    "expire-holds",
    "complete-stays",
    "expire-points",
    "reconcile-payments",
    "reconcile-coupons",
)
JOB_RESULT_SECONDS = 600


@router.get("/admin", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    return admin_render(request, "admin_home.html", visitor, section="home")


@router.get("/admin/payments", response_class=HTMLResponse)
async def payments(request: Request) -> Response:
    visitor, refusal = await visitor_in_role(request, "ADMIN")
    if refusal:
        return refusal
    status_wanted = request.query_params.get("status", "")
    wanted: dict[str, Any] = {
        "status": status_wanted,
        "page": page_number(request.query_params.get("page")),
    }
    params = wanted | {"size": PAGE_SIZE}
    found, errors = await listed(request, visitor, "/admin/payments", params, ("status",))
    status = 422 if errors else 200
    return admin_render(
        request,
        "admin_payments.html",
        visitor,
        status=status,
        section="payments",
        wanted=wanted,
        found=found,
        pages=pages(found, "/admin/payments", wanted),
        statuses=PAYMENT_STATUSES,
        errors=errors,
    )


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
    return admin_render(
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
    form, visitor, refusal = await posted_in_role(request, "ADMIN")
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
        if (page := triage(request, visitor, problem)) is not None:
            return page
        errors = errors_of(problem, ("as_of", "dry_run"), key="{}-" + name)
        if "dry-run" in problem.detail:  # "job 'x' has no dry-run mode": the box to untick
            errors = {f"dry_run-{name}": problem.message()}
        return _jobs(
            request, visitor, ran=None, form=form | {"job": name}, errors=errors, status=422
        )
    token = _signer(request).dumps(answer)
    return go(request, visitor, f"/admin/jobs?{urlencode({'ran': token})}#job-{name}")

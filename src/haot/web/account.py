"""Account pages: sign up, log in, log out (SPEC: ``/signup``, ``/login``; ``[data-testid=logout]``
when signed in). Every rule is the API's; the page shows its answer."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.pages import render, safe_next
from haot.web.session import (
    REFRESH_COOKIE,
    check_csrf,
    go,
    signed_in,
    signed_out,
    visitor_of,
)

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    visitor = await visitor_of(request)
    if visitor.user is not None:
        return go(request, visitor, safe_next(next))
    return render(request, "login.html", visitor=visitor, next=safe_next(next), form={}, errors={})


@router.post("/login", response_class=HTMLResponse)
async def log_in(request: Request) -> Response:
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    target = safe_next(form.get("next"))
    credentials = {"email": form.get("email", ""), "password": form.get("password", "")}
    try:
        async with Api(request) as api:
            signed_in(visitor, await api.post("/auth/login", credentials))
    except ApiProblem as problem:
        if problem.status not in (401, 422, 429):
            raise
        errors = problem.field_errors() if problem.status == 422 else {"form": problem.code}
        return render(
            request,
            "login.html",
            status=problem.status,
            visitor=visitor,
            next=target,
            form={"email": credentials["email"]},
            errors=errors,
        )
    return go(request, visitor, target)


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, next: str = "/") -> Response:
    visitor = await visitor_of(request)
    return render(request, "signup.html", visitor=visitor, next=safe_next(next), form={}, errors={})


@router.post("/signup", response_class=HTMLResponse)
async def sign_up(request: Request) -> Response:
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    target = safe_next(form.get("next"))
    account = {
        "name": form.get("name", ""),
        "email": form.get("email", ""),
        "password": form.get("password", ""),
    }
    try:
        async with Api(request) as api:
            await api.post("/auth/signup", account)
            credentials = {"email": account["email"], "password": account["password"]}
            signed_in(visitor, await api.post("/auth/login", credentials))
    except ApiProblem as problem:
        if problem.status not in (409, 422, 429):
            raise
        return render(
            request,
            "signup.html",
            status=problem.status,
            visitor=visitor,
            next=target,
            form={"name": account["name"], "email": account["email"]},
            errors=_signup_errors(problem),
        )
    return go(request, visitor, target)


def _signup_errors(problem: ApiProblem) -> dict[str, str]:
    """The API's refusal by field; the password policy's answer belongs to the password."""
    if fields := problem.field_errors():
        return fields
    if problem.code == "weak_password":
        return {"password": problem.detail}
    return {"form": problem.code, "detail": problem.detail}


@router.post("/logout")
async def log_out(request: Request) -> Response:
    await check_csrf(request)
    visitor = await visitor_of(request)
    if refresh := request.cookies.get(REFRESH_COOKIE):
        # Already ended (ApiProblem): the cookies go either way.
        async with Api(request) as api:
            with contextlib.suppress(ApiProblem):
                await api.post("/auth/logout", {"refresh_token": refresh})
    signed_out(visitor)
    return go(request, visitor, "/")

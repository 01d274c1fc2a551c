"""Account pages: sign up, log in, log out, my account (SPEC: ``/signup``, ``/login``;
``[data-testid=logout]`` when signed in). Every rule is the API's; the page shows its answer."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from haot.web.api_client import Api, ApiProblem
from haot.web.pages import render, safe_next
from haot.web.session import (
    REFRESH_COOKIE,
    Visitor,
    check_csrf,
    go,
    login_first,
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
        return {"password": problem.message()}
    return {"form": problem.code, "detail": problem.message()}


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


PROFILE = ("name", "phone", "birth_date", "gender")


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, changed: str = "") -> Response:
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    return _account(request, visitor, changed=changed)


def _account(
    request: Request,
    visitor: Visitor,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    changed: str = "",
    status: int = 200,
) -> Response:
    assert visitor.user is not None
    profile = {name: str(visitor.user.get(name) or "") for name in PROFILE}
    return render(
        request,
        "account.html",
        status=status,
        visitor=visitor,
        form=profile | (form or {}),
        errors=errors or {},
        changed=changed if changed in ("profile", "password") else "",
    )


@router.post("/account", response_class=HTMLResponse)
async def update_account(request: Request) -> Response:
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    # An empty optional field clears it (the API takes null for that); the name stays required.
    body: dict[str, str | None] = {name: form.get(name, "").strip() or None for name in PROFILE}
    body["name"] = form.get("name", "")
    try:
        async with Api(request, token=visitor.token) as api:
            visitor.user = await api.patch("/users/me", body)
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        errors = problem.field_errors() or {"form": problem.message()}
        return _account(request, visitor, form=form, errors=errors, status=422)
    return go(request, visitor, "/account?changed=profile")


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    """The API signs every session out when the password changes; this one signs in again with
    the new password, so only the others end."""
    form = await check_csrf(request)
    visitor = await visitor_of(request)
    if visitor.user is None:
        return login_first(request, visitor)
    change = {
        "current_password": form.get("current_password", ""),
        "new_password": form.get("new_password", ""),
    }
    try:
        async with Api(request, token=visitor.token) as api:
            await api.put("/users/me/password", change)
        async with Api(request) as api:
            credentials = {"email": visitor.user["email"], "password": change["new_password"]}
            signed_in(visitor, await api.post("/auth/login", credentials))
    except ApiProblem as problem:
        if problem.status not in (401, 422, 429):
            raise
        errors = (
            {
                401: {"current_password": problem.code},
                429: {"form": problem.code},
            }.get(problem.status)
            or problem.field_errors()
            or {"new_password": problem.message()}
        )
        return _account(request, visitor, errors=errors, status=problem.status)
    return go(request, visitor, "/account?changed=password")

"""Who is looking at a page, and forms that only this site can post.

The session is two HttpOnly, SameSite=Lax cookies (Secure in production): the access token
(``haot_session``, the cookie the API's streams also accept) and the refresh token
(``haot_refresh``). A page whose access token has lapsed refreshes it through the API and sets the
new pair on its answer. Every form carries a CSRF token: a signed copy of a random value kept in
the ``haot_csrf`` cookie (the signed double-submit pattern), checked on every POST.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from haot.platform.errors import HaotError
from haot.platform.web import SESSION_COOKIE, session_cookie_attributes
from haot.web.api_client import Api, ApiProblem

REFRESH_COOKIE = "haot_refresh"
CSRF_COOKIE = "haot_csrf"
CSRF_FIELD = "csrf"
CSRF_MAX_AGE_SECONDS = 12 * 3600


class CsrfRejected(HaotError):
    status = 403
    code = "csrf_rejected"
    title = "The form is out of date; reload the page and send it again"


@dataclass
class Visitor:
    """The visitor of one page: the signed-in user (None: anonymous), the token to call the API
    with, and the cookies the answer must set or remove."""

    user: dict[str, Any] | None = None
    token: str | None = None
    cookies: dict[str, tuple[str, int] | None] = field(default_factory=dict)
    csrf: str = ""

    def apply(self, request: Request, response: Response) -> Response:
        attributes = session_cookie_attributes(request.app.state.platform.settings)
        for name, value in self.cookies.items():
            if value is None:
                response.delete_cookie(name, **attributes)
            else:
                response.set_cookie(name, value[0], max_age=value[1], **attributes)
        return response


def login_first(request: Request, visitor: Visitor) -> Response:
    """To the log-in page, and back here once signed in."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login?" + urlencode({"next": here})
    return visitor.apply(request, RedirectResponse(target, status_code=303))


def go(request: Request, visitor: Visitor, target: str) -> Response:
    """A redirect after a form (303: the browser follows with a GET), with the visit's cookies."""
    return visitor.apply(request, RedirectResponse(target, status_code=303))


def signed_in(visitor: Visitor, pair: dict[str, Any]) -> None:
    """Keep a token pair from the API (log-in, sign-up, refresh) in the visitor's cookies."""
    visitor.token = str(pair["access_token"])
    visitor.cookies[SESSION_COOKIE] = (visitor.token, int(pair["expires_in"]))
    visitor.cookies[REFRESH_COOKIE] = (str(pair["refresh_token"]), 30 * 24 * 3600)


def signed_out(visitor: Visitor) -> None:
    visitor.user = visitor.token = None
    visitor.cookies[SESSION_COOKIE] = None
    visitor.cookies[REFRESH_COOKIE] = None


async def visitor_of(request: Request) -> Visitor:
    """The visitor, their session refreshed when its access token lapsed, and a CSRF token for
    the page's forms."""
    visitor = Visitor()
    visitor.csrf = _csrf_token(request, visitor)
    token = request.cookies.get(SESSION_COOKIE)
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not token and not refresh:
        return visitor
    if token:
        async with Api(request, token=token) as api:
            try:
                visitor.user, visitor.token = await api.get("/users/me"), token
                return visitor
            except ApiProblem as problem:
                if problem.status != 401:
                    raise
    if refresh:
        async with Api(request) as api:
            try:
                signed_in(visitor, await api.post("/auth/refresh", {"refresh_token": refresh}))
            except ApiProblem as problem:
                if problem.status not in (401, 422):
                    raise
                signed_out(visitor)
                return visitor
        async with Api(request, token=visitor.token) as api:
            try:
                visitor.user = await api.get("/users/me")
            except ApiProblem as problem:
                if problem.status != 401:
                    raise
                signed_out(visitor)  # refreshed, yet refused: deactivated meanwhile
        return visitor
    signed_out(visitor)
    return visitor


def _serializer(request: Request) -> URLSafeTimedSerializer:
    secret = request.app.state.platform.settings.jwt_secret
    return URLSafeTimedSerializer(secret, salt="haot.web.csrf")


def _csrf_token(request: Request, visitor: Visitor) -> str:
    value = request.cookies.get(CSRF_COOKIE)
    if not value or len(value) > 64:
        value = secrets.token_urlsafe(24)
        visitor.cookies[CSRF_COOKIE] = (value, CSRF_MAX_AGE_SECONDS)
    return str(_serializer(request).dumps(value))


async def check_csrf(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token matches this browser's cookie (else 403)."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    try:
        signed = _serializer(request).loads(form.get(CSRF_FIELD, ""), max_age=CSRF_MAX_AGE_SECONDS)
    except BadSignature:
        raise CsrfRejected() from None
    if not cookie or not hmac.compare_digest(str(signed), cookie):
        raise CsrfRejected()
    return form

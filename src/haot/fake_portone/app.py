"""The built-in fake PortOne: a Starlette sub-application mounted at ``/fake-portone``.

PortOne V2 subset (enough for the official ``portone-server-sdk`` to get and read every answer
haot needs): ``POST /login/api-secret``, ``GET /payments/{paymentId}``,
``POST /payments/{paymentId}/pre-register``, ``POST /payments/{paymentId}/cancel``,
``GET /payments-by-cursor``, PortOne's ``{type, message}`` error envelope and
``Authorization: PortOne <secret>`` (or ``Bearer <accessToken>`` from the login).

Plus a checkout page (``GET /checkout/{paymentId}``, ``POST .../approve`` and ``.../decline``,
then 303 to ``return_url``), signed webhooks with retries, and fault injection
(``/_faults``, not in production).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import orjson
import structlog
from jinja2 import Environment
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from haot.fake_portone.store import (
    FAKE_STORE_ID,
    Change,
    FakeStore,
    Faults,
    PortOneApiError,
    invalid,
    not_found,
    now_rfc3339,
    parse_rfc3339,
)
from haot.fake_portone.webhooks import WebhookMessage, WebhookSender
from haot.platform.redis import Redis
from haot.platform.settings import Settings

log = structlog.get_logger(__name__)

ApiHandler = Callable[[Request, "FakePortOne"], Awaitable[Response]]

BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10

_templates = Environment(autoescape=True)

CHECKOUT_PAGE = _templates.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fake PortOne checkout</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
  main { max-width: 26rem; margin: 3rem auto; background: #fff; padding: 1.5rem 2rem;
         border-radius: 12px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
  h1 { font-size: 1.25rem; margin-top: 0; }
  .note { color: #6b7280; font-size: .875rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
  dt { color: #6b7280; } dd { margin: 0; word-break: break-all; }
  .amount { font-size: 1.5rem; font-weight: 600; }
  .actions { display: flex; gap: .75rem; margin-top: 1.25rem; }
  .actions form { flex: 1; }
  button { width: 100%; padding: .75rem; border: 0; border-radius: 8px; font-size: 1rem;
           cursor: pointer; }
  #approve { background: #2563eb; color: #fff; } #decline { background: #e5e7eb; }
  details { margin-top: 1rem; font-size: .875rem; color: #6b7280; }
</style>
</head>
<body>
<main>
  <h1>Fake PortOne checkout</h1>
  <p class="note">Development and test payment gateway: no money moves.</p>
  <dl>
    <dt>Order</dt><dd>{{ order_name }}</dd>
    <dt>Payment</dt><dd id="payment-id">{{ payment_id }}</dd>
    <dt>Amount</dt>
    <dd class="amount" id="amount" data-amount="{{ amount }}">{{ amount_text }}</dd>
    <dt>Status</dt><dd id="status">{{ status }}</dd>
  </dl>
  {% if payable %}
  <form id="approve-form" method="post" action="{{ approve_url }}">
    <input type="hidden" name="return_url" value="{{ return_url }}">
    <details>
      <summary>Simulate a client that pays another amount</summary>
      <label>Amount <input type="number" name="amount" min="1" step="1"></label>
    </details>
  </form>
  <div class="actions">
    <form id="decline-form" method="post" action="{{ decline_url }}">
      <input type="hidden" name="return_url" value="{{ return_url }}">
      <button type="submit" id="decline">Decline</button>
    </form>
    <button type="submit" id="approve" form="approve-form">Approve {{ amount_text }}</button>
  </div>
  {% else %}
  <p>This payment is {{ status }}: there is nothing to approve.</p>
  <p><a id="back" href="{{ return_url }}">Back to haot</a></p>
  {% endif %}
</main>
</body>
</html>
"""
)

MESSAGE_PAGE = _templates.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake PortOne</title></head>
<body><main><h1>Fake PortOne</h1><p id="message">{{ message }}</p></main></body></html>
"""
)


def _message_page(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(MESSAGE_PAGE.render(message=message), status_code=status)


def _amount_text(amount: int, currency: str) -> str:
    return f"₩{amount:,}" if currency == "KRW" else f"{amount:,} {currency}"


def _portone_error(exc: PortOneApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid("The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    return body


def _optional_int(body: dict[str, Any], name: str, *, minimum: int = 0) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(f"{name} must be an integer of at least {minimum}")
    return value


def _check_store(store_id: Any) -> None:
    if store_id is not None and store_id != FAKE_STORE_ID:
        raise PortOneApiError(403, "FORBIDDEN", "This API secret cannot reach that store")


def _safe_return_url(raw: str | None, public_base_url: str) -> str:
    """Same-site only (a path, or a URL on ``public_base_url``): no open redirect."""
    if not raw:
        return public_base_url.rstrip("/") + "/"
    if raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    target, base = urlsplit(raw), urlsplit(public_base_url)
    if (target.scheme, target.netloc) == (base.scheme, base.netloc):
        return raw
    raise ValueError("return_url must be on this site")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class FakePortOne:
    """The fake: its ASGI ``app``, its Redis-backed ``store`` and its webhook ``sender``.

    ``create_app`` builds one when ``HAOT_PORTONE_API_BASE`` is empty, mounts ``app`` at
    ``/fake-portone``, exposes it as ``app.state.fake_portone`` and binds the platform's Redis at
    start-up. ``transport()`` drives it in-process (no socket) for the adapter."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: Redis | None = None,
        http_client: httpx.AsyncClient | None = None,
        webhook_secrets: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self._store = FakeStore(redis) if redis is not None else None
        self.sender = WebhookSender(
            url=settings.webhook_url,
            secrets=webhook_secrets or [settings.portone_webhook_secret],
            http_client=http_client,
            recorder=self._record_delivery,
        )
        self.app = self._build_app()

    def bind(self, redis: Redis) -> None:
        self._store = FakeStore(redis)

    @property
    def store(self) -> FakeStore:
        if self._store is None:
            raise RuntimeError("the fake PortOne has no Redis yet (bind() it at start-up)")
        return self._store

    def transport(self) -> httpx.ASGITransport:
        """Reach this fake in-process at ``settings.portone_base_url`` (no socket, no server)."""
        prefix = urlsplit(self.settings.portone_base_url).path.rstrip("/")
        return httpx.ASGITransport(app=self.app, root_path=prefix)

    async def aclose(self) -> None:
        await self.sender.aclose()

    # --- Python API for tests -------------------------------------------------------------

    async def faults(self) -> Faults:
        return await self.store.faults()

    async def set_faults(self, **changes: Any) -> Faults:
        return await self.store.set_faults(changes)

    async def reset_faults(self) -> None:
        """Back to faithful behaviour; webhooks still held for ``reorder`` go out (reversed)."""
        await self.store.reset_faults()
        await self.release_held()

    async def release_held(self) -> int:
        held = await self.store.release_held()
        self.sender.submit(WebhookMessage.from_bytes(raw) for raw in reversed(held))
        return len(held)

    async def deliveries(self) -> list[dict[str, Any]]:
        return await self.store.deliveries()

    # --- webhooks ---------------------------------------------------------------------------

    async def _record_delivery(self, record: dict[str, Any]) -> None:
        if self._store is not None:
            await self._store.record_delivery(record)

    async def emit(self, change: Change) -> None:
        """The webhook for a state change, through the fault settings."""
        if change.webhook_type is None:
            return
        payment = change.payment
        data = {
            "paymentId": payment["id"],
            "storeId": payment["storeId"],
            "transactionId": payment["transactionId"],
        }
        if change.cancellation is not None:
            data["cancellationId"] = change.cancellation["id"]
        faults = await self.store.faults()
        message = WebhookMessage.create(
            change.webhook_type,
            data,
            copies=faults.duplicate,
            timestamp=payment.get("statusChangedAt") or now_rfc3339(),
        )
        if faults.drop:
            await self._record_delivery(
                {"webhook_id": message.webhook_id, "type": message.type, "dropped": True}
            )
            return
        if faults.reorder > 0:
            held = await self.store.hold_webhook(message.to_bytes(), faults.reorder)
            self.sender.submit(WebhookMessage.from_bytes(raw) for raw in reversed(held))
            return
        self.sender.submit([message])

    # --- HTTP -------------------------------------------------------------------------------

    def _api(self, handler: ApiHandler, *, authenticated: bool = True) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            try:
                faults = await self.store.faults()
                if faults.delay:
                    await asyncio.sleep(faults.delay)
                if faults.http_502 and await self.store.take_502():
                    return HTMLResponse(BAD_GATEWAY_HTML, status_code=502)
                if authenticated:
                    await self._authorize(request)
                return await handler(request, self)
            except PortOneApiError as exc:
                return _portone_error(exc)

        return endpoint

    async def _authorize(self, request: Request) -> None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        credential = credential.strip()
        if scheme == "PortOne" and hmac.compare_digest(
            credential.encode(), self.settings.portone_api_secret.encode()
        ):
            return
        if scheme == "Bearer" and credential and await self.store.token_valid(credential):
            return
        raise PortOneApiError(401, "UNAUTHORIZED", "The API secret or access token is invalid")

    def _build_app(self) -> Starlette:
        api = self._api
        routes = [
            Route("/login/api-secret", api(_login, authenticated=False), methods=["POST"]),
            Route("/payments-by-cursor", api(_payments_by_cursor), methods=["GET"]),
            Route("/payments/{payment_id}", api(_get_payment), methods=["GET"]),
            Route("/payments/{payment_id}/pre-register", api(_pre_register), methods=["POST"]),
            Route("/payments/{payment_id}/cancel", api(_cancel), methods=["POST"]),
            Route("/checkout/{payment_id}", self._checkout, methods=["GET"], name="checkout"),
            Route(
                "/checkout/{payment_id}/approve", self._approve, methods=["POST"], name="approve"
            ),
            Route(
                "/checkout/{payment_id}/decline", self._decline, methods=["POST"], name="decline"
            ),
        ]
        if self.settings.env != "production":
            routes += [
                Route("/_faults", self._faults_endpoint, methods=["GET", "POST", "DELETE"]),
                Route("/_faults/release", self._release_endpoint, methods=["POST"]),
                Route("/_webhooks", self._deliveries_endpoint, methods=["GET"]),
            ]
        app = Starlette(routes=routes)
        app.state.fake = self
        return app

    # --- checkout pages -----------------------------------------------------------------------

    async def _checkout(self, request: Request) -> Response:
        payment_id = request.path_params["payment_id"]
        try:
            return_url = _safe_return_url(
                request.query_params.get("return_url"), self.settings.public_base_url
            )
        except ValueError as exc:
            return _message_page(str(exc), 400)
        payment = await self.store.get_payment(payment_id)
        if payment is None:
            return _message_page(f"Payment {payment_id} is unknown to PortOne.", 404)
        amount = int(payment["amount"]["total"])
        html = CHECKOUT_PAGE.render(
            payment_id=payment_id,
            order_name=payment["orderName"],
            amount=amount,
            amount_text=_amount_text(amount, payment["currency"]),
            status=payment["status"],
            payable=payment["status"] in ("READY", "FAILED"),
            return_url=return_url,
            # Relative to /checkout/: right behind any mount point or proxy prefix.
            approve_url=f"./{quote(payment_id, safe='')}/approve",
            decline_url=f"./{quote(payment_id, safe='')}/decline",
        )
        return HTMLResponse(html)

    async def _checkout_fields(self, request: Request) -> dict[str, str]:
        fields = dict(request.query_params)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        elif content_type.startswith("application/json"):
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                body = {}
            if isinstance(body, dict):
                fields.update({k: str(v) for k, v in body.items() if v is not None})
        return fields

    async def _approve(self, request: Request) -> Response:
        return await self._complete(request, approve=True)

    async def _decline(self, request: Request) -> Response:
        return await self._complete(request, approve=False)

    async def _complete(self, request: Request, *, approve: bool) -> Response:
        payment_id = request.path_params["payment_id"]
        fields = await self._checkout_fields(request)
        try:
            return_url = _safe_return_url(fields.get("return_url"), self.settings.public_base_url)
        except ValueError as exc:
            return _message_page(str(exc), 400)
        amount: int | None = None
        if approve and fields.get("amount"):
            try:
                amount = int(fields["amount"])
            except ValueError:
                amount = 0
            if amount <= 0:
                return _message_page("amount must be a positive integer", 400)
        try:
            if approve:
                change = await self.store.approve(payment_id, amount=amount)
            else:
                change = await self.store.decline(payment_id)
        except PortOneApiError as exc:
            status = 404 if exc.type == "PAYMENT_NOT_FOUND" else 409
            return _message_page(exc.message, status)
        await self.emit(change)
        payment = change.payment
        params = {
            "paymentId": payment_id,
            "transactionType": "PAYMENT",
            "txId": payment["transactionId"],
        }
        if not approve:
            params |= {"code": "FAKE_DECLINED", "message": payment["failure"]["reason"]}
        return RedirectResponse(_with_query(return_url, params), status_code=303)

    # --- fault control (not in production) -------------------------------------------------

    async def _faults_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            await self.reset_faults()
        elif request.method == "POST":
            try:
                body = await _json_body(request)
                await self.set_faults(**body)
            except PortOneApiError as exc:
                return _portone_error(exc)
            except ValidationError as exc:
                return JSONResponse(
                    {"type": "INVALID_REQUEST", "message": str(exc.errors(include_url=False))},
                    status_code=400,
                )
        return JSONResponse((await self.faults()).model_dump())

    async def _release_endpoint(self, request: Request) -> Response:
        return JSONResponse({"released": await self.release_held()})

    async def _deliveries_endpoint(self, request: Request) -> Response:
        return JSONResponse({"items": await self.deliveries()})


# --- PortOne V2 API handlers -------------------------------------------------------------------


async def _login(request: Request, fake: FakePortOne) -> Response:
    body = await _json_body(request)
    secret = body.get("apiSecret")
    if not isinstance(secret, str) or not hmac.compare_digest(
        secret.encode(), fake.settings.portone_api_secret.encode()
    ):
        raise PortOneApiError(401, "UNAUTHORIZED", "The API secret is invalid")
    return JSONResponse(
        {
            "accessToken": await fake.store.issue_token(),
            "refreshToken": await fake.store.issue_token(),
        }
    )


async def _get_payment(request: Request, fake: FakePortOne) -> Response:
    payment_id = request.path_params["payment_id"]
    _check_store(request.query_params.get("storeId"))
    payment = await fake.store.get_payment(payment_id)
    if payment is None:
        raise not_found(payment_id)
    return JSONResponse(payment)


async def _pre_register(request: Request, fake: FakePortOne) -> Response:
    payment_id = request.path_params["payment_id"]
    body = await _json_body(request)
    _check_store(body.get("storeId"))
    total = _optional_int(body, "totalAmount", minimum=1)
    if total is None:
        raise invalid("totalAmount is required")
    tax_free = _optional_int(body, "taxFreeAmount") or 0
    currency = body.get("currency", "KRW")
    if not isinstance(currency, str) or not currency:
        raise invalid("currency must be a currency code")
    await fake.store.pre_register(
        payment_id,
        total_amount=total,
        tax_free_amount=tax_free,
        currency=currency,
        store_id=FAKE_STORE_ID,
    )
    return JSONResponse({})


async def _cancel(request: Request, fake: FakePortOne) -> Response:
    payment_id = request.path_params["payment_id"]
    body = await _json_body(request)
    _check_store(body.get("storeId"))
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason:
        raise invalid("reason is required")
    amount = _optional_int(body, "amount", minimum=1)
    current = _optional_int(body, "currentCancellableAmount")
    change = await fake.store.cancel(
        payment_id, amount=amount, reason=reason, current_cancellable_amount=current
    )
    if body.get("skipWebhook") is not True:
        await fake.emit(change)
    return JSONResponse({"cancellation": change.cancellation})


async def _payments_by_cursor(request: Request, fake: FakePortOne) -> Response:
    raw = request.query_params.get("requestBody")
    if raw is not None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise invalid("requestBody is not valid JSON") from exc
        if not isinstance(body, dict):
            raise invalid("requestBody must be a JSON object")
    else:
        body = await _json_body(request)
    _check_store(body.get("storeId"))
    until = parse_rfc3339(body["until"], "until") if "until" in body else datetime.now(UTC)
    since = parse_rfc3339(body["from"], "from") if "from" in body else until - timedelta(days=90)
    size = _optional_int(body, "size", minimum=1) or DEFAULT_PAGE_SIZE
    if size > MAX_PAGE_SIZE:
        raise invalid(f"size must be at most {MAX_PAGE_SIZE}")
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise invalid("cursor must be a string")
    items = await fake.store.list_by_cursor(since=since, until=until, cursor=cursor, size=size)
    return JSONResponse({"items": [{"payment": p, "cursor": c} for p, c in items]})

"""HTTP routes of the payment context, including the PortOne webhook."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from haot.payment.domain import PaymentStatus
from haot.payment.schemas import CreatedPayment, PaymentCreate, PaymentRead
from haot.payment.service import PaymentService
from haot.platform.domain_docs import problems
from haot.platform.web import (
    API_PREFIX,
    AdminOnly,
    CurrentUser,
    Page,
    Paging,
    PlatformDep,
    require_service,
)

router = APIRouter(prefix=API_PREFIX, tags=["payment"])
# Pages a browser is sent to (outside /api/v1): the checkout redirect.
pages = APIRouter(tags=["payment"])


async def payment_service(platform: PlatformDep) -> PaymentService:
    service: PaymentService = platform.services["payment"]
    return service


Payments = Annotated[PaymentService, Depends(payment_service)]


@router.get("/payments", response_model=Page[PaymentRead], responses=problems(401, 422))
async def my_payments(
    user: CurrentUser, payments: Payments, paging: Paging, status: PaymentStatus | None = None
) -> Page[PaymentRead]:
    return await payments.list_payments(
        user_id=user.user_id, status=status, reservation_id=None, paging=paging
    )


@router.get("/payments/{payment_id}", response_model=PaymentRead, responses=problems(401, 404))
async def read_payment(payment_id: str, user: CurrentUser, payments: Payments) -> PaymentRead:
    return await payments.get_for(user, payment_id[:64])


@router.post(
    "/payments/{payment_id}/complete",
    response_model=PaymentRead,
    responses=problems(401, 404, 502, 503),
)
async def complete_payment(payment_id: str, user: CurrentUser, payments: Payments) -> PaymentRead:
    """Called after the browser returns from checkout; the body is ignored: we ask PortOne."""
    return await payments.complete(user, payment_id[:64])


@router.get("/admin/payments", response_model=Page[PaymentRead], responses=problems(401, 403, 422))
async def all_payments(
    _: AdminOnly,
    payments: Payments,
    paging: Paging,
    status: PaymentStatus | None = None,
    user_id: uuid.UUID | None = None,
    reservation_id: uuid.UUID | None = None,
) -> Page[PaymentRead]:
    return await payments.list_payments(
        user_id=user_id, status=status, reservation_id=reservation_id, paging=paging
    )


@router.post("/webhooks/portone", status_code=200, responses=problems(400))
async def portone_webhook(request: Request, payments: Payments) -> Response:
    """Standard Webhooks signature over the raw body; duplicates are acknowledged (2xx)."""
    body = await request.body()
    await payments.handle_webhook(body, dict(request.headers))
    return Response(status_code=200)


@pages.get(
    "/payments/{payment_id}/checkout",
    status_code=303,
    response_class=RedirectResponse,
    responses=problems(404, 409, 502, 503),
)
async def checkout(payment_id: str, payments: Payments) -> RedirectResponse:
    """The reservation's ``checkout_url``: makes sure the amount is pre-registered at PortOne,
    then sends the browser to the checkout page. The random payment id is the credential, as on
    PortOne's own checkout."""
    return RedirectResponse(await payments.checkout(payment_id[:64]), status_code=303)


# What the reservation saga asks of payments in a split deployment (ADR 0018): never routed by
# the gateway, only for the reservation context's service token. Idempotent, so the client may
# send it again: keyed by the reservation (one payment per reservation; a repeat answers the
# payment created first and creates none).
internal = APIRouter(prefix="/internal/v1/payment", include_in_schema=False)
FromReservation = Annotated[str, require_service("payment", "reservation")]


@internal.post("/payments", response_model=CreatedPayment)
async def internal_create_payment(
    body: PaymentCreate, _: FromReservation, payments: Payments
) -> CreatedPayment:
    return await payments.create_payment(
        reservation_id=body.reservation_id,
        user_id=body.user_id,
        amount=body.amount,
        order_name=body.order_name,
    )

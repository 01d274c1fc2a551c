"""The fake PortOne's state, all in Redis (shared by every worker process): payments as the exact
PortOne V2 JSON the API answers, a creation-time index for the cursor listing, access tokens,
fault settings, held webhooks and a log of delivery attempts.

Every key starts with ``fake-portone:`` and shares one hash tag, so multi-key scripts stay
Redis Cluster-safe.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import WatchError

from haot.platform.redis import Redis

PREFIX = "fake-portone:{fp}:"
PAYMENT_KEY = PREFIX + "payment:"
INDEX_KEY = PREFIX + "payments"
TOKEN_KEY = PREFIX + "token:"
FAULTS_KEY = PREFIX + "faults"
HTTP_502_KEY = PREFIX + "faults:http_502"
HELD_KEY = PREFIX + "held-webhooks"
DELIVERIES_KEY = PREFIX + "deliveries"

FAKE_STORE_ID = "store-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "haot:fake-portone:store"))
FAKE_MERCHANT_ID = "merchant-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "haot:fake-portone:merchant"))
FAKE_CHANNEL = {
    "type": "TEST",
    "id": "channel-id-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "haot:fake-portone:channel")),
    "key": "channel-key-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "haot:fake-portone:key")),
    "name": "haot fake PG",
    "pgProvider": "TOSSPAYMENTS",
    "pgMerchantId": "haot-fake-mid",
}
TOKEN_TTL_SECONDS = 1800
DELIVERY_LOG_SIZE = 1000
PAID_STATES = ("PAID", "PARTIAL_CANCELLED", "CANCELLED", "VIRTUAL_ACCOUNT_ISSUED")

_TAKE_502 = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  redis.call('DECR', KEYS[1])
  return 1
end
return 0
"""

_HOLD = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then
  local held = redis.call('LRANGE', KEYS[1], 0, -1)
  redis.call('DEL', KEYS[1])
  return held
end
return {}
"""

_RELEASE = """
local held = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return held
"""


class PortOneApiError(Exception):
    """An answer in PortOne's error envelope: ``{"type": ..., "message": ...}``."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message}


def not_found(payment_id: str) -> PortOneApiError:
    return PortOneApiError(404, "PAYMENT_NOT_FOUND", f"Payment {payment_id} not found")


def invalid(message: str) -> PortOneApiError:
    return PortOneApiError(400, "INVALID_REQUEST", message)


class Faults(BaseModel):
    """What the fake does wrong on purpose (tests; never in production).

    ``delay``: seconds before answering each API call. ``duplicate``: each webhook is sent this
    many times. ``reorder``: hold webhooks until this many are waiting, then send them newest
    first (0: off). ``drop``: send no webhooks. ``http_502``: answer the next N API calls with
    502 Bad Gateway."""

    model_config = ConfigDict(extra="forbid")

    delay: float = Field(default=0.0, ge=0, le=60)
    duplicate: int = Field(default=1, ge=1, le=20)
    reorder: int = Field(default=0, ge=0, le=1000)
    drop: bool = False
    http_502: int = Field(default=0, ge=0, le=10_000)


def now_rfc3339(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise invalid(f"{field} must be an RFC 3339 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"{field} must be an RFC 3339 date-time") from exc
    if parsed.tzinfo is None:
        raise invalid(f"{field} needs a time zone offset")
    return parsed


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _new_transaction_id() -> str:
    return str(uuid.uuid4())


def _encode_cursor(payment_id: str) -> str:
    return base64.urlsafe_b64encode(payment_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("cursor is not one this API gave out") from exc


@dataclass(frozen=True, slots=True)
class Change:
    """The payment after a state change, with what the webhook about it needs."""

    payment: dict[str, Any]
    webhook_type: str | None
    cancellation: dict[str, Any] | None = None


class FakeStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # --- payments -------------------------------------------------------------------------

    async def get_payment(self, payment_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(PAYMENT_KEY + payment_id)
        if raw is None:
            return None
        payment: dict[str, Any] = orjson.loads(raw)
        return payment

    async def _update(
        self,
        payment_id: str,
        change: Callable[[dict[str, Any] | None], Change],
        *,
        index_score: int | None = None,
    ) -> Change:
        """Read-modify-write one payment atomically (optimistic, WATCH/MULTI): safe across
        processes, so two concurrent cancels cannot both pass the cancellable-amount check."""
        key = PAYMENT_KEY + payment_id
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    result = change(orjson.loads(raw) if raw is not None else None)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, orjson.dumps(result.payment))
                    if raw is None and index_score is not None:
                        pipe.zadd(INDEX_KEY, {payment_id: index_score})
                    await pipe.execute()
                    return result
                except WatchError:
                    continue

    async def pre_register(
        self,
        payment_id: str,
        *,
        total_amount: int,
        tax_free_amount: int,
        currency: str,
        store_id: str,
    ) -> dict[str, Any]:
        moment = datetime.now(UTC)
        now = now_rfc3339(moment)

        def change(current: dict[str, Any] | None) -> Change:
            if current is not None:
                if current["status"] in PAID_STATES:
                    raise PortOneApiError(
                        409, "ALREADY_PAID", f"Payment {payment_id} is already paid"
                    )
                current["amount"].update(total=total_amount, taxFree=tax_free_amount)
                current.update(currency=currency, updatedAt=now)
                return Change(current, None)
            payment = {
                "status": "READY",
                "id": payment_id,
                "transactionId": _new_transaction_id(),
                "merchantId": FAKE_MERCHANT_ID,
                "storeId": store_id,
                "version": "V2",
                "requestedAt": now,
                "updatedAt": now,
                "statusChangedAt": now,
                "orderName": f"haot {payment_id}",
                "amount": {
                    "total": total_amount,
                    "taxFree": tax_free_amount,
                    "discount": 0,
                    "paid": 0,
                    "cancelled": 0,
                    "cancelledTaxFree": 0,
                },
                "currency": currency,
                "customer": {},
                "origin": {"platformType": "PC", "ipAddress": "127.0.0.1"},
            }
            return Change(payment, None)

        return (await self._update(payment_id, change, index_score=_ms(moment))).payment

    async def approve(self, payment_id: str, *, amount: int | None) -> Change:
        """The buyer approved on the checkout page. ``amount`` simulates a tampered client that
        paid a different amount than the one pre-registered."""
        now = now_rfc3339()

        def change(current: dict[str, Any] | None) -> Change:
            if current is None:
                raise not_found(payment_id)
            if current["status"] not in ("READY", "FAILED"):
                raise PortOneApiError(409, "ALREADY_PAID", f"Payment {payment_id} is not payable")
            if current["status"] == "FAILED":
                current["transactionId"] = _new_transaction_id()
            current.pop("failedAt", None)
            current.pop("failure", None)
            paid = current["amount"]["total"] if amount is None else amount
            current["amount"].update(total=paid, paid=paid)
            current.update(
                status="PAID",
                channel=dict(FAKE_CHANNEL),
                method={
                    "type": "PaymentMethodCard",
                    "card": {"publisher": "HAOT", "issuer": "HAOT", "brand": "LOCAL"},
                    "approvalNumber": f"{secrets.randbelow(10**8):08d}",
                },
                pgTxId=f"fake-pg-{uuid.uuid4().hex[:16]}",
                receiptUrl=f"https://fake-portone.invalid/receipts/{current['transactionId']}",
                paidAt=now,
                disputes=[],
                updatedAt=now,
                statusChangedAt=now,
            )
            return Change(current, "Transaction.Paid")

        return await self._update(payment_id, change)

    async def decline(self, payment_id: str) -> Change:
        now = now_rfc3339()

        def change(current: dict[str, Any] | None) -> Change:
            if current is None:
                raise not_found(payment_id)
            if current["status"] not in ("READY", "FAILED"):
                raise PortOneApiError(409, "ALREADY_PAID", f"Payment {payment_id} is not payable")
            current.update(
                status="FAILED",
                failedAt=now,
                failure={
                    "reason": "The buyer declined on the fake PortOne checkout",
                    "pgCode": "FAKE_DECLINED",
                    "pgMessage": "declined",
                },
                updatedAt=now,
                statusChangedAt=now,
            )
            return Change(current, "Transaction.Failed")

        return await self._update(payment_id, change)

    async def cancel(
        self,
        payment_id: str,
        *,
        amount: int | None,
        reason: str,
        current_cancellable_amount: int | None,
    ) -> Change:
        now = now_rfc3339()

        def change(current: dict[str, Any] | None) -> Change:
            if current is None:
                raise not_found(payment_id)
            status = current["status"]
            if status == "CANCELLED":
                raise PortOneApiError(
                    409, "PAYMENT_ALREADY_CANCELLED", "The payment is already cancelled"
                )
            if status not in ("PAID", "PARTIAL_CANCELLED"):
                raise PortOneApiError(409, "PAYMENT_NOT_PAID", "The payment is not paid")
            money = current["amount"]
            cancellable = money["paid"] - money["cancelled"]
            if current_cancellable_amount is not None and current_cancellable_amount != cancellable:
                raise PortOneApiError(
                    409,
                    "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN",
                    f"currentCancellableAmount {current_cancellable_amount} does not match "
                    f"the cancellable amount {cancellable}",
                )
            to_cancel = cancellable if amount is None else amount
            if to_cancel > cancellable:
                raise PortOneApiError(
                    409,
                    "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT",
                    f"Cancel amount {to_cancel} exceeds the cancellable amount {cancellable}",
                )
            cancellation = {
                "status": "SUCCEEDED",
                "id": str(uuid.uuid4()),
                "pgCancellationId": f"fake-pg-cancel-{uuid.uuid4().hex[:16]}",
                "totalAmount": to_cancel,
                "taxFreeAmount": 0,
                "vatAmount": to_cancel // 11,
                "reason": reason,
                "cancelledAt": now,
                "requestedAt": now,
                "trigger": "API",
            }
            money["cancelled"] += to_cancel
            full = money["cancelled"] == money["paid"]
            current.setdefault("cancellations", []).append(cancellation)
            current.pop("disputes", None)  # only PAID payments carry disputes in V2
            current.update(
                status="CANCELLED" if full else "PARTIAL_CANCELLED",
                cancelledAt=now,
                updatedAt=now,
                statusChangedAt=now,
            )
            kind = "Transaction.Cancelled" if full else "Transaction.PartialCancelled"
            return Change(current, kind, cancellation)

        return await self._update(payment_id, change)

    async def list_by_cursor(
        self, *, since: datetime, until: datetime, cursor: str | None, size: int
    ) -> list[tuple[dict[str, Any], str]]:
        """Payments created in ``[since, until]``, oldest first; the cursor is the last id seen
        (its rank is looked up afresh, so payments created meanwhile never shift a page)."""
        if cursor:
            rank: Any = await self.redis.zrank(INDEX_KEY, _decode_cursor(cursor))
            if rank is None:
                raise invalid("cursor is not one this API gave out")
            start = int(rank) + 1
        else:
            start = int(await self.redis.zcount(INDEX_KEY, "-inf", f"({_ms(since)}"))
        members: Any = await self.redis.zrange(INDEX_KEY, start, start + size - 1, withscores=True)
        low, high = _ms(since), _ms(until)
        ids = [str(member) for member, score in members if low <= score <= high]
        if not ids:
            return []
        raws = await self.redis.mget([PAYMENT_KEY + payment_id for payment_id in ids])
        return [
            (orjson.loads(raw), _encode_cursor(payment_id))
            for payment_id, raw in zip(ids, raws, strict=True)
            if raw is not None
        ]

    # --- access tokens (POST /login/api-secret) ------------------------------------------

    async def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        await self.redis.set(TOKEN_KEY + token, "1", ex=TOKEN_TTL_SECONDS)
        return token

    async def token_valid(self, token: str) -> bool:
        return bool(await self.redis.exists(TOKEN_KEY + token))

    # --- faults ---------------------------------------------------------------------------

    async def faults(self) -> Faults:
        raw: Any = await self.redis.hgetall(FAULTS_KEY)
        pending_502 = await self.redis.get(HTTP_502_KEY)
        values: dict[str, Any] = {k: orjson.loads(v) for k, v in raw.items()}
        values["http_502"] = max(0, int(pending_502 or 0))
        return Faults.model_validate(values)

    async def set_faults(self, changes: dict[str, Any]) -> Faults:
        merged = (await self.faults()).model_dump() | changes
        faults = Faults.model_validate(merged)
        persistent = faults.model_dump(exclude={"http_502"})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(FAULTS_KEY, mapping={k: orjson.dumps(v) for k, v in persistent.items()})
            if "http_502" in changes:
                pipe.set(HTTP_502_KEY, faults.http_502)
            await pipe.execute()
        return faults

    async def reset_faults(self) -> None:
        await self.redis.delete(FAULTS_KEY, HTTP_502_KEY)

    async def take_502(self) -> bool:
        return bool(await self.redis.eval(_TAKE_502, 1, HTTP_502_KEY))

    # --- held webhooks (reorder fault) and the delivery log ----------------------------------

    async def hold_webhook(self, message: bytes, threshold: int) -> list[bytes]:
        """Hold one webhook; once ``threshold`` are held, hand all back (oldest first)."""
        held = await self.redis.eval(_HOLD, 1, HELD_KEY, message, threshold)
        return [item.encode() if isinstance(item, str) else item for item in held]

    async def release_held(self) -> list[bytes]:
        held = await self.redis.eval(_RELEASE, 1, HELD_KEY)
        return [item.encode() if isinstance(item, str) else item for item in held]

    async def record_delivery(self, record: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(DELIVERIES_KEY, orjson.dumps(record))
            pipe.ltrim(DELIVERIES_KEY, -DELIVERY_LOG_SIZE, -1)
            await pipe.execute()

    async def deliveries(self) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(DELIVERIES_KEY, 0, -1)
        return [orjson.loads(item) for item in raw]

    async def clear(self) -> None:
        """Forget every payment, token, fault and log (tests)."""
        keys = [key async for key in self.redis.scan_iter(match="fake-portone:*", count=500)]
        if keys:
            await self.redis.delete(*keys)

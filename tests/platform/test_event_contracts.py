"""Every event type is a versioned, frozen contract that survives the trip through the wire
format unchanged; a payload that does not fit its contract is refused as poison, never read with a
default (issue 11, item 14)."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from haot.bootstrap import build_platform  # noqa: F401  (imports every context's contracts)
from haot.coupon import events as coupon_events
from haot.identity import events as identity_events
from haot.lodging import events as lodging_events
from haot.payment import events as payment_events
from haot.platform.events import (
    CONTRACTS,
    Event,
    EventBody,
    PoisonEvent,
    decode_event,
    encode_event,
)
from haot.reservation import events as reservation_events
from haot.review import events as review_events

# Every event the product emits. A new event type must be added here, and so be round-tripped.
EVERY_TYPE = {
    "identity.user_registered",
    "identity.user_renamed",
    "identity.user_role_changed",
    "identity.user_deactivated",
    "identity.user_reactivated",
    "identity.tokens_revoked",
    "lodging.lodging_created",
    "lodging.lodging_updated",
    "lodging.lodging_deleted",
    "lodging.room_type_changed",
    "lodging.calendar_changed",
    "payment.payment_paid",
    "payment.payment_failed",
    "payment.payment_discrepant",
    "payment.payment_refunded",
    "reservation.reservation_confirmed",
    "reservation.reservation_expired",
    "reservation.reservation_failed",
    "reservation.reservation_cancelled",
    "reservation.reservation_completed",
    "reservation.payment_rejected",
    "coupon.claim_accepted",
    "review.lodging_rating_changed",
}

MODULES = (
    identity_events,
    lodging_events,
    payment_events,
    reservation_events,
    coupon_events,
    review_events,
)


def product_contracts() -> dict[str, type[EventBody]]:
    return {t: c for t, c in CONTRACTS.items() if c.__module__.startswith("haot.")}


def sample_value(annotation: Any, index: int) -> Any:
    """A value of the field's type, distinct per field (so a swapped field would show)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return sample_value(inner, index)
    samples: dict[Any, Any] = {
        uuid.UUID: uuid.UUID(int=index + 1),
        str: f"text-{index}",
        int: 1000 + index,
        float: 1764800000.5 + index,
        bool: index % 2 == 0,
        date: date(2027, 1, 1 + index),
    }
    return samples[annotation]


def sample(contract: type[EventBody]) -> EventBody:
    return contract(
        **{
            name: sample_value(field.annotation, index)
            for index, (name, field) in enumerate(contract.model_fields.items())
        }
    )


def test_every_event_type_has_exactly_one_contract_in_its_context() -> None:
    assert set(product_contracts()) == EVERY_TYPE
    for event_type, contract in product_contracts().items():
        context = event_type.split(".", 1)[0]
        assert contract.__module__ == f"haot.{context}.events", event_type
        assert contract.VERSION >= 1


@pytest.mark.parametrize("event_type", sorted(EVERY_TYPE))
def test_every_contract_round_trips_through_the_wire_format(event_type: str) -> None:
    contract = product_contracts()[event_type]
    body = sample(contract)
    sent = Event.of(body)
    received = decode_event(encode_event(sent))
    assert received == sent
    assert (received.type, received.version) == (contract.TYPE, contract.VERSION)
    assert received.aggregate_id == body.aggregate_id()
    assert contract.decode(received) == body


@pytest.mark.parametrize("event_type", sorted(EVERY_TYPE))
def test_contracts_are_frozen(event_type: str) -> None:
    body = sample(product_contracts()[event_type])
    name = next(iter(type(body).model_fields))
    with pytest.raises(ValidationError):
        setattr(body, name, None)


def cancelled() -> Event:
    return Event.of(sample(reservation_events.ReservationCancelled))


def with_payload(event: Event, payload: dict[str, Any], *, version: int | None = None) -> Event:
    return Event(
        type=event.type,
        aggregate_id=event.aggregate_id,
        payload=payload,
        id=event.id,
        occurred_at=event.occurred_at,
        version=event.version if version is None else version,
    )


def test_a_renamed_key_is_poison_not_a_default() -> None:
    """The defect this replaces: ``.get("refund_amount") or 0`` refunded a cancelled guest 0."""
    event = cancelled()
    payload = dict(event.payload)
    payload["refund"] = payload.pop("refund_amount")
    with pytest.raises(PoisonEvent, match="refund_amount"):
        reservation_events.ReservationCancelled.decode(with_payload(event, payload))


@pytest.mark.parametrize(
    "change",
    [
        {"refund_amount": "a lot"},
        {"reservation_id": "not-a-uuid"},
        {"check_in": "someday"},
        {"was_confirmed": None},
    ],
)
def test_a_value_of_the_wrong_type_is_poison(change: dict[str, Any]) -> None:
    event = cancelled()
    with pytest.raises(PoisonEvent):
        reservation_events.ReservationCancelled.decode(
            with_payload(event, {**event.payload, **change})
        )


def test_a_newer_version_than_the_reader_knows_is_poison() -> None:
    event = cancelled()
    with pytest.raises(PoisonEvent, match="newer"):
        reservation_events.ReservationCancelled.decode(
            with_payload(event, event.payload, version=2)
        )


def test_another_type_is_refused() -> None:
    with pytest.raises(PoisonEvent):
        reservation_events.ReservationConfirmed.decode(cancelled())


def test_fields_a_newer_producer_added_are_ignored() -> None:
    event = cancelled()
    decoded = reservation_events.ReservationCancelled.decode(
        with_payload(event, {**event.payload, "refund_reason": "storm"})
    )
    assert decoded == reservation_events.ReservationCancelled.decode(event)


def test_an_envelope_without_a_version_is_version_one() -> None:
    """Envelopes published before versions existed."""
    raw = encode_event(cancelled()).replace(b'"version":1,', b"")
    assert b"version" not in raw
    assert decode_event(raw).version == 1


def test_two_contracts_cannot_claim_one_type() -> None:
    with pytest.raises(TypeError, match="two contracts"):

        class Impostor(EventBody):
            TYPE: typing.ClassVar[str] = "payment.payment_paid"

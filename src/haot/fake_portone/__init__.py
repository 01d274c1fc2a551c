"""The built-in fake PortOne V2 (development and tests): mounted at ``/fake-portone`` when
``HAOT_PORTONE_API_BASE`` is empty. State lives in Redis, so every worker process shares it."""

from haot.fake_portone.app import FakePortOne
from haot.fake_portone.store import FAKE_STORE_ID, FakeStore, Faults
from haot.fake_portone.webhooks import WebhookMessage, WebhookSender, sign_headers

__all__ = [
    "FAKE_STORE_ID",
    "FakePortOne",
    "FakeStore",
    "Faults",
    "WebhookMessage",
    "WebhookSender",
    "sign_headers",
]

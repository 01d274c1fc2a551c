"""The fake's checkout page: plain HTML forms a browser can submit (relative POST actions resolved
the way a browser resolves them), 303 back to a same-site return URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urljoin, urlsplit

from tests.fake_portone.conftest import BASE, Harness

FORM = re.compile(r'<form id="(?P<id>[a-z-]+)" method="post" action="(?P<action>[^"]+)">')


def forms(html: str) -> dict[str, str]:
    return {m["id"]: m["action"] for m in FORM.finditer(html)}


async def test_checkout_page_shows_the_amount_and_its_forms_work(harness: Harness) -> None:
    await harness.pre_register("pay-page", 123_400)
    page_url = f"{BASE}/fake-portone/checkout/pay-page"
    page = await harness.client.get(page_url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "₩123,400" in page.text
    assert 'data-amount="123400"' in page.text
    assert 'id="status">READY<' in page.text
    actions = forms(page.text)
    assert set(actions) == {"approve-form", "decline-form"}
    assert 'id="approve" form="approve-form"' in page.text

    approve_url = urljoin(page_url, actions["approve-form"])  # what a browser POSTs to
    assert approve_url == f"{BASE}/fake-portone/checkout/pay-page/approve"
    done = await harness.client.post(approve_url, data={"return_url": f"{BASE}/", "amount": ""})
    assert done.status_code == 303
    location = urlsplit(done.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{BASE}/"
    query = parse_qs(location.query)
    payment = await harness.gateway.get_payment("pay-page")
    assert payment is not None
    assert query == {
        "paymentId": ["pay-page"],
        "transactionType": ["PAYMENT"],
        "txId": [payment.transaction_id],
    }
    assert payment.paid_amount == 123_400

    after = await harness.client.get(page_url)
    assert 'id="status">PAID<' in after.text
    assert forms(after.text) == {}


async def test_return_url_and_decline(harness: Harness) -> None:
    await harness.pre_register("pay-back", 5_000)
    page = await harness.client.get(
        "/fake-portone/checkout/pay-back", params={"return_url": "/reservations/r-1?tab=pay"}
    )
    assert page.status_code == 200
    assert 'value="/reservations/r-1?tab=pay"' in page.text
    declined = await harness.client.post(
        urljoin(f"{BASE}/fake-portone/checkout/pay-back", forms(page.text)["decline-form"]),
        data={"return_url": "/reservations/r-1?tab=pay"},
    )
    assert declined.status_code == 303
    location = urlsplit(declined.headers["location"])
    assert location.path == "/reservations/r-1"
    query = parse_qs(location.query)
    assert query["tab"] == ["pay"]
    assert query["code"] == ["FAKE_DECLINED"]
    assert query["paymentId"] == ["pay-back"]

    # The default return URL is the site root; a declined payment may still be paid.
    paid = await harness.client.post("/fake-portone/checkout/pay-back/approve")
    assert paid.status_code == 303
    assert paid.headers["location"].startswith(f"{BASE}/?paymentId=pay-back")


async def test_checkout_refusals(harness: Harness) -> None:
    client = harness.client
    assert (await client.get("/fake-portone/checkout/pay-ghost")).status_code == 404
    assert (await client.post("/fake-portone/checkout/pay-ghost/approve")).status_code == 404

    await harness.pre_register("pay-guard", 5_000)
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        page = await client.get("/fake-portone/checkout/pay-guard", params={"return_url": evil})
        assert page.status_code == 400, evil
        posted = await client.post(
            "/fake-portone/checkout/pay-guard/approve", data={"return_url": evil}
        )
        assert posted.status_code == 400, evil
    for amount in ("abc", "0", "-5"):
        rejected = await client.post(
            "/fake-portone/checkout/pay-guard/approve", data={"amount": amount}
        )
        assert rejected.status_code == 400, amount
    still = await harness.gateway.get_payment("pay-guard")
    assert still is not None
    assert still.paid_amount == 0

    await harness.approve("pay-guard")
    twice = await client.post("/fake-portone/checkout/pay-guard/approve")
    assert twice.status_code == 409
    decline_paid = await client.post("/fake-portone/checkout/pay-guard/decline")
    assert decline_paid.status_code == 409


async def test_checkout_page_escapes_what_it_shows(harness: Harness) -> None:
    payment_id = 'pay-"><img src=x onerror=alert(1)>'
    await harness.pre_register(payment_id, 1_000)
    page = await harness.client.get(f"/fake-portone/checkout/{quote(payment_id, safe='')}")
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    action = forms(page.text)["approve-form"]
    assert action == f"./{quote(payment_id, safe='')}/approve"
    approved = await harness.client.post(
        urljoin(f"{BASE}/fake-portone/checkout/x", action), data={}
    )
    assert approved.status_code == 303

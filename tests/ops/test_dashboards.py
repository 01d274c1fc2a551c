"""deploy/grafana: every dashboard is a well-formed Grafana dashboard on the provisioned
datasource, names only metrics and labels the code exports, and every query of every panel
returns data from a real Prometheus scraping a real haot under a short real load.

The load is the product used over HTTP (tests/e2e/flows' outside client): sign-ups and log-ins
(one over the rate limit), a host's lodging, search, quote, bookings paid, declined and tampered
with at the built-in fake PortOne (whose webhooks confirm them), a booking cancelled and refunded,
one sold out and left to expire, a coupon drop claimed past its stock (duplicates, rate-limited
bursts), a claim-result stream and one too many, points granted, spent, given back, earned and
expired, and the jobs run by the admin route. Events go through Kafka (tansu) with the relay and
consumers in the serving process, so consumer lag exists; two pipeline faults are put in on
purpose: outbox rows sent again (a relay that crashed before marking them: the inboxes skip
them) and one event whose payload breaks its contract (parked as poison).

Prometheus is Debian's package (scripts/ensure-debian-tool.sh, run by ``make services``): missing,
the Prometheus test skips, or fails under CI=true.

Panels and variables on the Loki data source (the logs dashboard) are not PromQL: they are left
out of the Prometheus checks here, and tests/ops/test_logql.py parses each with Grafana's LogQL
grammar and checks what it names against real log lines (a test below holds that every one of
them is there, and that no other panel is left out).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from sqlalchemy import select, update

import haot
from haot.app import create_app
from haot.platform.events import Event
from haot.platform.metrics import EVENTS_DUPLICATE, EVENTS_POISON
from haot.platform.outbox import OutboxMessage
from haot.platform.settings import Settings
from haot.review.events import LodgingRatingChanged
from haot.seed import seed_accounts
from tests.conftest import make_settings
from tests.e2e.flows import (
    ADMIN_EMAIL,
    API,
    HOST_EMAIL,
    POLICY,
    Account,
    Outside,
    expect,
    new_tag,
    outside,
    poll,
    seoul_today,
    stay_of,
)
from tests.ops.logql import dashboard_expressions, is_loki, loki_uid
from tests.support.deployment import Deployment
from tests.support.server import serving
from tests.support.services import free_port, unavailable
from tests.support.tansu import kafka_overrides

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "haot.yml"

# What Grafana's variables become in the queries sent to Prometheus here.
RATE_INTERVAL = "15s"
RANGE = "5m"
# Labels Prometheus adds to every scraped series; a metric's own ``job`` label (the scheduled
# jobs') arrives as ``exported_job``, because the target's wins.
TARGET_LABELS = frozenset({"job", "instance"})
SCRAPE_SECONDS = 1
PROMETHEUS_START_SECONDS = 20.0


# Dashboards as data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str

    def where(self) -> str:
        return f"{self.dashboard} / panel {self.panel!r}: {self.expr}"


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def queries() -> list[Query]:
    """The PromQL of every panel (a panel on the Loki data source is LogQL: test_logql.py)."""
    found = []
    for path in DASHBOARDS:
        board = load(path)
        for panel in all_panels(board):
            if is_loki(panel.get("datasource")):
                continue
            for target in panel.get("targets", []):
                found.append(Query(board["title"], panel["title"], target["expr"]))
    return found


def variable_queries() -> list[Query]:
    """Template variables' ``label_values(selector, label)``, as the PromQL that answers them."""
    found = []
    for path in DASHBOARDS:
        board = load(path)
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") != "query" or is_loki(variable.get("datasource")):
                continue
            raw = variable["query"]
            text = raw["query"] if isinstance(raw, dict) else raw
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text.strip())
            assert match, f"{board['title']}: variable {variable['name']}: {text}"
            found.append(
                Query(
                    board["title"],
                    f"variable ${variable['name']}",
                    f"group by ({match[2]}) ({match[1]})",
                )
            )
    return found


def provisioned_uid() -> str:
    config = yaml.safe_load(DATASOURCES.read_text())
    (source,) = config["datasources"]
    assert source["type"] == "prometheus", source
    uid: str = source["uid"]
    return uid


def substitute(expr: str) -> str:
    """Grafana's variables as Prometheus gets them with every value selected: the rate interval
    and the range as durations, every template variable as the regex its "All" sends (``.*``)."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace(
        "${__rate_interval}", RATE_INTERVAL
    )
    expr = expr.replace("$__range", RANGE).replace("${__range}", RANGE)
    expr = expr.replace("$__interval", RATE_INTERVAL)
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", ".*", expr)
    assert "$" not in expr, expr
    return expr


# A small reader of PromQL selectors: metric names with their label matchers (quoted values may
# hold braces, e.g. route templates), and the labels of ``by (...)``/``without (...)`` clauses.


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)

    def promql(self) -> str:
        inner = ", ".join(f'{label}{op}"{value}"' for label, op, value in self.matchers)
        return f"{self.metric}{{{inner}}}"


_MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_FUNCTIONS_AND_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan"}
)


def selectors(expr: str) -> list[Selector]:
    found: list[Selector] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char == '"':  # skip a string outside a selector
            i = expr.index('"', i + 1) + 1
            continue
        if char == "[":  # a range or subquery duration
            i = expr.index("]", i) + 1
            continue
        match = _NAME.match(expr, i)
        if not match or (i and (expr[i - 1].isalnum() or expr[i - 1] == "_")):
            i += 1
            continue
        name, j = match.group(), match.end()
        rest = expr[j:].lstrip()
        if rest.startswith("("):  # a function or an aggregation
            i = j
            continue
        if name in _FUNCTIONS_AND_KEYWORDS or not name.startswith("haot_"):
            i = j
            continue
        matchers: list[tuple[str, str, str]] = []
        if rest.startswith("{"):
            k = j + (len(expr[j:]) - len(rest)) + 1
            while expr[k] != "}":
                matcher = _MATCHER.match(expr, k)
                assert matcher, f"cannot read the matchers of {name} in {expr!r} at {k}"
                matchers.append((matcher[1], matcher[2], matcher[3]))
                k = matcher.end()
            j = k + 1
        found.append(Selector(name, tuple(matchers)))
        i = j
    return found


def grouping_labels(expr: str) -> set[str]:
    return {
        label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label
    }


# What the code exports ----------------------------------------------------------------------------


def exported_metrics() -> dict[str, frozenset[str]]:
    """Every series name haot's code declares (``_total``, ``_bucket``... included), with the
    labels it has once Prometheus scraped it."""
    for module in pkgutil.walk_packages(haot.__path__, "haot."):
        if module.name.startswith("haot.migrations") or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    exported: dict[str, frozenset[str]] = {}
    for collector, names in REGISTRY._collector_to_names.items():
        own = set(getattr(collector, "_labelnames", ()))
        if "job" in own:
            own = (own - {"job"}) | {"exported_job"}
        for name in names:
            if name.startswith("haot_"):
                extra = {"le"} if name.endswith("_bucket") else set()
                exported[name] = frozenset(own | extra | TARGET_LABELS)
    return exported


# The fast tests -----------------------------------------------------------------------------------


def test_there_is_a_dashboard_for_each_subject() -> None:
    assert {path.stem for path in DASHBOARDS} == {
        "haot-http",
        "haot-booking-funnel",
        "haot-coupon-drop",
        "haot-payments",
        "haot-events",
        "haot-points",
        "haot-logs",
    }


def test_each_dashboard_is_valid_and_uses_the_provisioned_datasource() -> None:
    uid = provisioned_uid()
    sources = {"prometheus": uid, "loki": loki_uid()}
    providers = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"], providers
    uids: set[str] = set()
    titles: set[str] = set()
    for path in DASHBOARDS:
        board = load(path)
        name = path.name
        assert board.get("title"), f"{name}: no title"
        assert board.get("uid"), f"{name}: no uid"
        assert len(board["uid"]) <= 40, f"{name}: uid {board['uid']!r} longer than Grafana takes"
        assert board["uid"] not in uids, f"{name}: uid {board['uid']} used twice"
        assert board["title"] not in titles, f"{name}: title {board['title']} used twice"
        uids.add(board["uid"])
        titles.add(board["title"])
        assert board.get("schemaVersion", 0) >= 36, f"{name}: schemaVersion"
        assert "__inputs" not in board, f"{name}: provisioned dashboards take no import inputs"
        ids = [panel["id"] for panel in all_panels(board)]
        assert ids, f"{name}: no panels"
        assert len(ids) == len(set(ids)), f"{name}: panel ids not unique: {ids}"
        for panel in all_panels(board):
            where = f"{name} / panel {panel.get('title')!r}"
            assert panel.get("title"), f"{name}: panel {panel['id']} has no title"
            assert {"h", "w", "x", "y"} <= set(panel.get("gridPos", {})), where
            if panel["type"] == "row":
                continue
            assert panel.get("description"), f"{where}: say what it shows"
            source = panel["datasource"]
            assert source in [{"type": t, "uid": u} for t, u in sources.items()], where
            targets = panel.get("targets", [])
            assert targets, f"{where}: no query"
            refs = [t["refId"] for t in targets]
            assert len(refs) == len(set(refs)), f"{where}: refIds {refs}"
            for target in targets:
                assert target.get("expr", "").strip(), f"{where}: empty query"
                assert target.get("datasource", source) == source, where
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                source = variable["datasource"]
                assert source in [{"type": t, "uid": u} for t, u in sources.items()], (
                    f"{name}: ${variable['name']}"
                )


def test_loki_panels_are_left_to_the_logql_check_and_nothing_else_is() -> None:
    """The Prometheus checks skip exactly the Loki panels and variables, and each of those is
    among the queries tests/ops/test_logql.py parses and checks against real log lines."""
    logql = {q.where for q in dashboard_expressions()}
    promql = queries()
    every_target = 0
    for path in DASHBOARDS:
        board = load(path)
        for panel in all_panels(board):
            for target in panel.get("targets", []):
                every_target += 1
                if is_loki(panel.get("datasource")):
                    where = f"{path.name} / panel {panel['title']!r} / {target['refId']}"
                    assert where in logql, where
                    assert target["expr"] not in {q.expr for q in promql}, where
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query" and is_loki(variable.get("datasource")):
                assert f"{path.name} / variable ${variable['name']}" in logql, variable["name"]
    loki_targets = len([q for q in logql if " / panel " in q])
    assert len(promql) + loki_targets == every_target
    assert loki_targets >= 8, "the logs dashboard's panels"
    logs_title = load(GRAFANA / "dashboards" / "haot-logs.json")["title"]
    assert all(q.dashboard != logs_title for q in promql), "the logs dashboard is all LogQL"


def test_every_query_names_metrics_and_labels_the_code_exports() -> None:
    """Without Prometheus: a renamed metric or label breaks this before a panel goes blank."""
    exported = exported_metrics()
    problems = []
    for query in [*queries(), *variable_queries()]:
        found = selectors(query.expr)
        if not found:
            problems.append(f"{query.where()}: no haot_ metric")
        known: set[str] = set(TARGET_LABELS)
        for selector in found:
            labels = exported.get(selector.metric)
            if labels is None:
                problems.append(f"{query.where()}: {selector.metric} is not exported")
                continue
            known |= labels
            for label, _, _ in selector.matchers:
                if label not in labels:
                    problems.append(f"{query.where()}: {selector.metric} has no label {label}")
        for label in grouping_labels(query.expr) - known:
            problems.append(f"{query.where()}: grouped by {label}, which no metric here has")
    assert not problems, "\n".join(problems)


def test_the_selector_reader_reads_route_templates_and_functions() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(haot_http_request_duration_seconds_"
        'bucket{job=~"$job", route="/api/v1/coupon-events/{event_id}/claims"}[5m]))) '
        "/ on() group_left vector(1) or sum(haot_outbox_backlog)"
    )
    assert selectors(expr) == [
        Selector(
            "haot_http_request_duration_seconds_bucket",
            (("job", "=~", "$job"), ("route", "=", "/api/v1/coupon-events/{event_id}/claims")),
        ),
        Selector("haot_outbox_backlog", ()),
    ]
    assert grouping_labels(expr) == {"le", "route"}
    assert substitute('rate(x{a=~"$route", b=~"${instance}"}[$__rate_interval])') == (
        f'rate(x{{a=~".*", b=~".*"}}[{RATE_INTERVAL}])'
    )


# A real Prometheus --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = os.environ.get("HAOT_TEST_PROMETHEUS") or shutil.which("prometheus")
    if not path or not os.access(path, os.X_OK):
        unavailable(
            "prometheus",
            "no prometheus binary on PATH: install the Debian package prometheus "
            "(bash scripts/ensure-debian-tool.sh, run by make services)",
        )
        raise AssertionError("unreachable")
    return path


@contextlib.asynccontextmanager
async def prometheus(binary: str, target: str, directory: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus scraping ``target`` (host:port) every second, its storage in ``directory``;
    a client of its HTTP API, once it is ready."""
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": f"{SCRAPE_SECONDS}s",
                    "scrape_timeout": f"{SCRAPE_SECONDS}s",
                    "evaluation_interval": f"{SCRAPE_SECONDS}s",
                },
                "scrape_configs": [
                    {
                        "job_name": "haot",
                        "metrics_path": "/metrics",
                        "static_configs": [{"targets": [target]}],
                    }
                ],
            }
        )
    )
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + PROMETHEUS_START_SECONDS
            while True:
                assert process.poll() is None, f"prometheus exited: {log_path.read_text()}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/-/ready")).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"prometheus not ready: {log_path.read_text()}"
                await asyncio.sleep(0.1)
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def instant(client: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    answer = await client.post("/api/v1/query", data={"query": expr})
    body: dict[str, Any] = answer.json()
    return body


async def scraped_since(client: httpx.AsyncClient, moment: float, scrapes: int) -> None:
    """Wait until Prometheus has scraped the app ``scrapes`` times after ``moment`` (epoch s),
    the last one successfully (Prometheus hands its targets to the scrapers ~5 s after start)."""
    deadline = time.monotonic() + 20
    last: Any = None
    while time.monotonic() < deadline:
        last = await instant(client, 'timestamp(up{job="haot"}) and up{job="haot"} == 1')
        result = last.get("data", {}).get("result", [])
        if result and float(result[0]["value"][1]) >= moment + (scrapes - 1) * SCRAPE_SECONDS:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"prometheus did not scrape the app {scrapes} more times: {last}")


# The load -----------------------------------------------------------------------------------------


async def checkout(api: Outside, created: dict[str, Any], action: str, **fields: str) -> None:
    """The guest's browser at the fake PortOne's checkout page: ``approve`` (with ``amount``: a
    client that pays another amount) or ``decline``."""
    redirect = await api.http.get(created["checkout_url"])
    assert redirect.status_code == 303, (redirect.status_code, redirect.text[:300])
    page_url = urljoin(created["checkout_url"], redirect.headers["location"])
    page = expect_html(await api.http.get(page_url))
    form = re.search(
        rf'<form id="{action}-form" method="post" action="([^"]+)">(.*?)</form>', page, re.S
    )
    assert form, page[:2000]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form[2]))
    done = await api.http.post(
        urljoin(page_url, form[1].replace("&amp;", "&")), data={**hidden, **fields}
    )
    assert done.status_code == 303, (done.status_code, done.text[:300])


def expect_html(response: httpx.Response) -> str:
    assert response.status_code == 200, (response.request.url, response.status_code)
    return response.text


async def payment_status(api: Outside, guest: Account, payment_id: str, status: str) -> None:
    await poll(
        lambda: api.http.get(f"{API}/payments/{payment_id}", headers=guest.auth),
        lambda r: r.status_code == 200 and r.json()["status"] == status,
        f"payment {payment_id} {status}",
    )


async def run_job(api: Outside, admin: Account, name: str, as_of: str | None = None) -> Any:
    params = {"as_of": as_of} if as_of else {}
    return expect(
        await api.http.post(f"{API}/admin/jobs/{name}/run", params=params, headers=admin.auth),
        200,
    )


async def drive(api: Outside) -> None:
    tag = new_tag()
    host = await api.log_in(HOST_EMAIL)
    admin = await api.log_in(ADMIN_EMAIL)
    payer, canceller, decliner, tamperer = await asyncio.gather(
        *(api.sign_up(tag, who) for who in ("payer", "canceller", "decliner", "tamperer"))
    )
    start = seoul_today() + timedelta(days=30)
    listing = await api.open_lodging(
        host, tag, rooms=5, start=start, nights=1, price=50_000, policy=POLICY
    )
    last_room = await api.open_lodging(
        host, f"{tag}l", rooms=1, start=start, nights=1, price=40_000, policy=POLICY
    )
    stay = stay_of(listing)

    # Search (the index follows the lodging's events) and quote.
    search = {"region": listing.district, "check_in": stay["check_in"]}
    search |= {"check_out": stay["check_out"], "guests": 2}
    await poll(
        lambda: api.http.get(f"{API}/lodgings", params=search),
        lambda r: r.status_code == 200 and len(r.json()["items"]) == 1,
        "the new lodging found by a search",
    )
    expect(await api.http.post(f"{API}/reservations/quote", json=stay, headers=payer.auth), 200)

    # Points to spend.
    for guest in (payer, canceller):
        expect(
            await api.http.post(
                f"{API}/admin/points/grants",
                json={"user_id": guest.user_id, "amount": 5_000, "reason": "dashboards"},
                headers=admin.auth,
            ),
            201,
        )

    # A coupon drop of two, claimed by four (and twice by one); then one guest's burst.
    coupon = await api.create_coupon(admin, f"Dashboards {tag}", discount_value=1_000)
    now = time.time()
    event = expect(
        await api.http.post(
            f"{API}/admin/coupon-events",
            headers=admin.auth,
            json={
                "coupon_id": coupon["id"],
                "name": f"Dashboards {tag}",
                "starts_at": _iso(now - 5),
                "ends_at": _iso(now + 3600),
                "quantity": 2,
            },
        ),
        201,
    )
    claims = f"{API}/coupon-events/{event['id']}/claims"
    first = await asyncio.gather(
        *(api.http.post(claims, headers=g.auth) for g in (payer, canceller, decliner, tamperer))
    )
    assert sorted(a.status_code for a in first) == [202, 202, 409, 409], [a.text for a in first]
    again = await api.http.post(claims, headers=payer.auth)
    assert again.status_code == 409, again.text
    burst = await asyncio.gather(*(api.http.post(claims, headers=tamperer.auth) for _ in range(8)))
    assert 429 in {a.status_code for a in burst}, [a.status_code for a in burst]

    # A claim-result stream, and one more than the user may hold.
    async with api.http.stream("GET", f"{API}/coupon-claims/stream", headers=payer.auth) as live:
        assert live.status_code == 200
        second = await api.http.get(f"{API}/coupon-claims/stream", headers=payer.auth)
        assert second.status_code == 429, second.text

    # Paid with points, confirmed by the webhook, completed by the guest's return as well.
    _, paid = await api.book(payer, {**stay, "points": 1_000}, f"{tag}-payer")
    await checkout(api, paid, "approve")
    await api.complete(payer, paid["payment_id"])
    await api.reservation_in(payer, paid["id"], "CONFIRMED")

    # Paid, then cancelled 30 days ahead: refunded in full, points given back.
    _, refunded = await api.book(canceller, {**stay, "points": 500}, f"{tag}-canceller")
    await checkout(api, refunded, "approve")
    await api.reservation_in(canceller, refunded["id"], "CONFIRMED")
    expect(
        await api.http.post(
            f"{API}/reservations/{refunded['id']}/cancel",
            json={"reason": "plans changed"},
            headers=canceller.auth,
        ),
        200,
    )
    await poll(
        lambda: api.http.get(f"{API}/payments/{refunded['payment_id']}", headers=canceller.auth),
        lambda r: r.status_code == 200 and r.json()["cancelled_amount"] != 0,
        "the cancelled booking refunded",
    )

    # Declined at the gateway; paid another amount than asked (discrepant).
    _, declined = await api.book(decliner, stay, f"{tag}-decliner")
    await checkout(api, declined, "decline")
    await payment_status(api, decliner, declined["payment_id"], "FAILED")
    _, tampered = await api.book(tamperer, stay, f"{tag}-tamperer")
    await checkout(api, tampered, "approve", amount="1000")
    await payment_status(api, tamperer, tampered["payment_id"], "DISCREPANT")

    # The last room held and never paid: the next guest is told it is sold out, and the hold
    # expires.
    _, held = await api.book(decliner, stay_of(last_room), f"{tag}-holder")
    sold_out = await api.http.post(
        f"{API}/reservations",
        json=stay_of(last_room),
        headers={**tamperer.auth, "Idempotency-Key": f"{tag}-late"},
    )
    assert sold_out.status_code == 409, sold_out.text
    later = (seoul_today() + timedelta(days=1)).isoformat()
    await run_job(api, admin, "expire-holds", as_of=f"{later}T00:00:00+09:00")
    await api.reservation_in(decliner, held["id"], "EXPIRED")

    # The paid stay completes (points earned); then every lot expires, far in the future.
    check_out = (start + timedelta(days=1)).isoformat()
    await run_job(api, admin, "complete-stays", as_of=f"{check_out}T12:00:00+09:00")
    await api.reservation_in(payer, paid["id"], "COMPLETED")
    await poll(
        lambda: api.http.get(f"{API}/points/history", params={"type": "EARN"}, headers=payer.auth),
        lambda r: r.status_code == 200 and r.json()["total"] == 1,
        "points earned by the completed stay",
    )
    far = (seoul_today() + timedelta(days=800)).isoformat()
    expired = await run_job(api, admin, "expire-points", as_of=far)
    assert expired["result"]["points"] > 0, expired
    for job in ("reconcile-payments", "reconcile-coupons", "purge-outbox"):
        await run_job(api, admin, job)

    # Logging in once too often for the account's rate limit (5 a minute here).
    answers = [
        await api.http.post(
            f"{API}/auth/login", json={"email": HOST_EMAIL, "password": "wrong-password-1"}
        )
        for _ in range(6)
    ]
    assert 429 in {a.status_code for a in answers}, [a.status_code for a in answers]

    # Coupons issued, and the claim of a winner settled.
    await poll(
        lambda: api.http.get(f"{API}/admin/coupon-events", headers=admin.auth),
        lambda r: (
            r.status_code == 200
            and any(e["id"] == event["id"] and e["issued"] == 2 for e in r.json()["items"])
        ),
        "the drop's two coupons issued",
    )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _total(metric: Any) -> float:
    return float(
        sum(
            sample.value
            for family in metric.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
    )


async def pipeline_faults(app: Any, settings: Settings) -> None:
    """Outbox rows sent again (every inbox skips them) and an event that breaks its contract
    (parked as poison by the consumer that reads it)."""
    platform = app.state.platform
    duplicates, poison = _total(EVENTS_DUPLICATE), _total(EVENTS_POISON)
    sessions = platform.databases.sessions_for("reservation")
    async with sessions() as session:
        ids = (
            await session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.published_at.is_not(None)).limit(50)
            )
        ).all()
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(published_at=None)
        )
        broken = Event(
            type=LodgingRatingChanged.TYPE,
            aggregate_id=str(uuid.uuid4()),
            payload={"lodging_id": "not-a-uuid"},
        )
        session.add(OutboxMessage.from_event(broken, settings.kafka_topic_prefix))
        await session.commit()
    deadline = time.monotonic() + 20
    while _total(EVENTS_DUPLICATE) == duplicates or _total(EVENTS_POISON) == poison:
        assert time.monotonic() < deadline, "the re-sent rows or the broken event were not read"
        await asyncio.sleep(0.1)


# The Prometheus test ------------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_every_panel_returns_data_from_a_real_prometheus(
    settings: Settings, kafka_bootstrap: str, prometheus_binary: str, tmp_path: Path
) -> None:
    port = free_port()
    served = make_settings(
        settings.database_url,
        **kafka_overrides(kafka_bootstrap, "dashboards", partitions=1),
        public_base_url=f"http://127.0.0.1:{port}",
        login_rate_per_minute=5,
        live_streams_per_user=1,
    )
    app = create_app(served, run_workers=True)
    async with (
        serving(app, port) as base,
        prometheus(prometheus_binary, f"127.0.0.1:{port}", tmp_path) as client,
    ):
        await seed_accounts(app.state.platform.services["identity"])
        # The load is seen as it happens (rates), not only its totals at the end.
        await scraped_since(client, time.time(), scrapes=1)
        async with outside(Deployment(base, "dashboards")) as api:
            await drive(api)
        await pipeline_faults(app, served)
        await scraped_since(client, time.time(), scrapes=3)

        problems = []
        for query in [*queries(), *variable_queries()]:
            expr = substitute(query.expr)
            body = await instant(client, expr)
            if body.get("status") != "success":
                problems.append(f"{query.where()}\n    does not run: {body.get('error')}")
            elif not body["data"]["result"]:
                problems.append(f"{query.where()}\n    returns no data")
            for selector in selectors(expr):
                exact = all(
                    op in ("=", "!=") or value == ".*" for _, op, value in selector.matchers
                )
                if not exact:
                    continue  # e.g. status=~"5..": no 5xx is no fault
                found = await instant(client, f"count({selector.promql()})")
                if not found.get("data", {}).get("result"):
                    problems.append(f"{query.where()}\n    {selector.promql()} selects nothing")
        assert not problems, "panels without data:\n" + "\n".join(problems)

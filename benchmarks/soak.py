"""Fault soak (issue 7): records through every example flow while the sandbox misbehaves.

    .venv/bin/python benchmarks/soak.py [--records 10000] [--kills 3] [--deadline-minutes 240]

Seeds two sandboxes on loopback (people: CRM, billing, marketing, support, seeded small because
localstripe rewrites its store on every write; goods: shop, warehouse, 3PL, ERP, most records), turns
faults on on every system (20% 5xx, 10% 429 with Retry-After, 5% slow-then-504 timeouts and
connection resets), runs every flow as a subprocess, SIGKILLs `kills` of them mid-load and reruns
each until it succeeds; then changes the sources (new shop orders, CRM phone numbers), delivers
every webhook three times in shuffled order through the real receiver and runs what the real-time
sensors request, then one scheduled pass. With the faults off it counts, from the systems' own APIs
and the hub store, per flow: records sent, arrived (by id and latest content), parked in the DLQ
(by reason), duplicated and lost. Exit status 1 when anything is duplicated or lost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository's packages (tests) by their names
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from integration_sandbox.landscape import sandbox_env  # noqa: E402
from integration_project.model import load_landscape  # noqa: E402
from integration_project.runtime import Store  # noqa: E402
from integration_project.runtime.store import dlq, ledger  # noqa: E402
from integration_sandbox import Sandbox  # noqa: E402
from integration_sandbox.testing import crm_contact, free_port_sandbox  # noqa: E402
from integration_project.webhooks import SCHEMES, Inbox, create_receiver, endpoints_from_landscape  # noqa: E402
from tests.e2e.conftest import recording, serving  # noqa: E402
from tests.e2e.test_all_flows import (  # noqa: E402
    api, crm_list, erp_products, json_list, json_pages, members, set_weather, shop_list, stripe_list,
    support_records)
from tests.sandbox.sandbox_clients import shop_graphql  # noqa: E402
from tests.seeds import crm_parked  # noqa: E402

ORDER_CREATE = """mutation($order: OrderCreateOrderInput!) {
  orderCreate(order: $order) { order { id } userErrors { field message } } }"""

# 35% of requests fail: 20% 5xx, 10% 429 (Retry-After: 1 s), 2.5% slow-then-504, 2.5% resets
FAULTS = {"error_rate": 0.20, "rate_limit_rate": 0.10, "retry_after_seconds": 1, "timeout_rate": 0.025,
          "timeout_seconds": 1, "reset_rate": 0.025}
# Flows run in stages, the flows of a stage at once (their waits on faults overlap); a stage
# starts when its prerequisites are in: customers before deals and invoices, orders before stock
# levels and shipments, one flow of an object (which ingests it) before its siblings.
STAGES = [["ticket_support_to_hub", "payment_billing_to_hub", "engagement_marketing_to_crm",
           "product_legacy_erp_to_shop", "order_shop_to_hub"],
          ["customer_crm_to_billing", "product_legacy_erp_to_inventory", "order_shop_to_inventory",
           "order_shop_to_fulfilment", "order_shop_to_support"],
          ["customer_crm_to_marketing", "customer_crm_to_support", "deal_crm_to_billing",
           "stock_level_inventory_to_shop", "shipment_fulfilment_to_shop"],
          ["invoice_billing_to_legacy_erp"]]
# a stage's way to ingest orders once before their three consumers run at once
INGEST_ONLY = {"order_shop_to_hub": ("order_shop_to_inventory", [["shop", "order"], ["hub", "order"]])}
REALTIME = ["customer_crm_realtime", "deal_crm_realtime", "order_shop_realtime",
            "shipment_fulfilment_realtime"]  # each source's realtime job: one run to every realtime consumer
KILLABLE = ["order_shop_to_inventory", "order_shop_to_fulfilment", "order_shop_to_support",
            "product_legacy_erp_to_shop", "product_legacy_erp_to_inventory"]  # long loads
# the shop's binding's value map: a shipped parcel is in transit at the shop, a delivered one
# delivered; the other statuses are no Shopify event (the fulfillment alone shows)
SHOP_STATUS = {"shipped": "in_transit", "delivered": "delivered"}
ATTEMPTS = 8  # runs of one flow before the soak gives up on it
CHILD = """
import json, sys
import dagster as dg
from definitions.definitions import defs
selection = json.loads(sys.argv[3])
result = defs.resolve_job_def(sys.argv[1]).execute_in_process(
    instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=json.loads(sys.argv[2]),
    asset_selection=selection and [dg.AssetKey(path) for path in selection])
retries = sum(m.metadata["retries"].value for e in result.get_asset_materialization_events()
              if "retries" in (m := e.event_specific_data.materialization).metadata)
print(json.dumps({"success": result.success, "retries": retries}))
"""


class SoakTimeout(RuntimeError):
    """The soak's global deadline passed: it fails loudly rather than hang."""


@dataclass
class FlowCount:
    """One flow's end state: source records, and what became of them in the consumer."""

    sent: int = 0
    arrived: int = 0
    dlq: int = 0
    duplicated: int = 0
    lost: int = 0
    lost_ids: list[str] = field(default_factory=list)


@dataclass
class SoakResult:
    """What the soak measured."""

    records: int
    mix: dict[str, int]
    flows: dict[str, FlowCount]
    dlq_reasons: dict[str, int]
    invalid_not_parked: list[str]
    retries: int
    runs: int
    kills: list[str]
    webhooks: dict[str, int]
    seconds: float

    def total(self, name: str) -> int:
        """A figure summed over the flows (sent, arrived, dlq, duplicated, lost)."""
        return sum(getattr(c, name) for c in self.flows.values())

    @property
    def ok(self) -> bool:
        """Nothing duplicated, nothing lost, every seeded invalid record parked."""
        return self.total("duplicated") == 0 and self.total("lost") == 0 and not self.invalid_not_parked


class Runner:
    """Runs flow jobs in child processes against a deadline; counts runs, retries and kills."""

    def __init__(self, env: dict[str, str], store: Store, deadline: float):
        self.env, self.store, self.deadline = env, store, deadline
        self.retries = self.runs = 0
        self.kills: list[str] = []
        self.lock = threading.Lock()

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SoakTimeout("the soak's deadline passed")
        return left

    def start(self, job: str, tags: dict[str, str]) -> subprocess.Popen[str]:
        with self.lock:
            self.runs += 1
        name, selection = INGEST_ONLY.get(job, (job, None))
        return subprocess.Popen([sys.executable, "-c", CHILD, name, json.dumps(tags), json.dumps(selection)],
                                env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def finish(self, child: subprocess.Popen[str]) -> bool:
        try:
            out, _ = child.communicate(timeout=self.remaining())
        except subprocess.TimeoutExpired:
            child.kill()
            raise SoakTimeout("a run outlived the soak's deadline") from None
        lines = out.strip().splitlines()
        if child.returncode != 0 or not lines:
            return False
        report = json.loads(lines[-1])
        with self.lock:
            self.retries += report["retries"]
        return bool(report["success"])

    def run(self, job: str, tags: dict[str, str] | None = None, kill_after: int | None = None) -> None:
        """Run a job until it succeeds (a scheduler's retry); SIGKILL the first attempt once it has
        delivered `kill_after` records."""
        for attempt in range(ATTEMPTS):
            child = self.start(job, tags or {})
            if attempt == 0 and kill_after is not None and self._kill_at(child, job, kill_after):
                continue
            if self.finish(child):
                return
        raise RuntimeError(f"{job} failed {ATTEMPTS} times")

    def stage(self, jobs: list[str], victims: dict[str, int]) -> None:
        """Run a stage's jobs at once, each until it succeeds."""
        with ThreadPoolExecutor(len(jobs)) as pool:
            for done in [pool.submit(self.run, job, None, victims.get(job)) for job in jobs]:
                done.result()

    def _kill_at(self, child: subprocess.Popen[str], job: str, delivered: int) -> bool:
        while child.poll() is None:
            self.remaining()
            if self._delivered(job) >= delivered:
                child.send_signal(signal.SIGKILL)
                child.communicate()
                with self.lock:
                    self.kills.append(f"{job} after {self._delivered(job)} deliveries")
                return True
            time.sleep(0.1)
        return False

    def _delivered(self, job: str) -> int:
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ledger).where(
                ledger.c.flow == job, ledger.c.outcome == "delivered")).scalar_one()


def sizes(records: int) -> dict[str, int]:
    """Seed sizes for at least `records` records through flows, most of them on the goods side.

    As measured: a CRM contact makes 4 (three consumers and its engagement), a new shop order 2.5
    (warehouse, support, half of them the 3PL), a seeded order about 3.6 (those, its shipment and
    its share of products); goods are sized at 3.5 a record, to land just above `records`.
    """
    people = max(20, min(100, records // 100))
    changes = max(10, records // 50)
    goods = max(50, math.ceil((records - 4 * people - 2.5 * changes) / 3.5))
    return {"people": people, "goods": goods, "new_orders": changes, "crm_changes": min(changes, people // 2)}


@contextmanager
def sandboxes(root: Path, seed: int, size: dict[str, int], hooks_url: str) -> Iterator[tuple[Sandbox, Sandbox]]:
    """The people and the goods sandboxes, both posting their webhooks to `hooks_url` (projects too,
    uncounted: the CRM's realtime runs deliver to it as to billing)."""
    with ExitStack() as stack:
        people = stack.enter_context(free_port_sandbox(
            root / "people", ["crm", "billing", "marketing", "support", "projects"], seed=seed, size=size["people"],
            webhook_url=f"{hooks_url}/{{system}}", startup_timeout=300))
        goods = stack.enter_context(free_port_sandbox(
            root / "goods", ["shop", "inventory", "fulfilment", "legacy_erp"], seed=seed, size=size["goods"],
            options={"fulfilment": {"advance_seconds": 86_400},
                     "shop": {"restore_rate": 1000, "bucket_size": 20_000}},  # a Shopify Plus shop's cost limits
            webhook_url=f"{hooks_url}/{{system}}", startup_timeout=300))
        yield people, goods


def close_deals(people: Sandbox, count: int) -> None:
    """Close some deals in the CRM, one of them of a contact the hub parks (it waits in the DLQ)."""
    parked = crm_parked(people.seed_report("crm"))
    deals = crm_list(people, "deals")
    chosen = [d for d in deals if crm_contact(d) not in parked][:count]
    chosen += [d for d in deals if crm_contact(d) in parked][:1]
    with api(people, "crm") as crm:
        for deal in chosen:
            crm.patch(f"/crm/v3/objects/deals/{deal['id']}",
                      json={"properties": {"dealstage": "closedwon"}}).raise_for_status()


def change_sources(people: Sandbox, goods: Sandbox, size: dict[str, int], rng: random.Random) -> None:
    """What the business does while the flows run: new shop orders, new phone numbers in the CRM."""
    skus = [p["variants"][0]["sku"] for p in shop_list(goods, "products")]
    with api(goods, "shop") as shop:
        for n in range(size["new_orders"]):
            lines = [{"sku": sku, "title": sku, "quantity": rng.randint(1, 3),
                      "priceSet": {"shopMoney": {"amount": "9.90", "currencyCode": "EUR"}}}
                     for sku in rng.sample(skus, rng.randint(1, 3))]
            order = {"email": f"soak{n}@example.com", "currency": "EUR", "lineItems": lines,
                     "financialStatus": rng.choice(["PAID", "PAID", "PENDING"])}
            shop_graphql(shop, ORDER_CREATE, order=order)
    contacts = [c for c in crm_list(people, "contacts") if c["id"] not in crm_parked(people.seed_report("crm"))]
    with api(people, "crm") as crm:
        for contact in rng.sample(contacts, min(size["crm_changes"], len(contacts))):
            crm.patch(f"/crm/v3/objects/contacts/{contact['id']}",
                      json={"properties": {"phone": f"+49 30 {rng.randrange(10**7):07d}"}}).raise_for_status()


def events(hooks: list, system: str) -> set[str]:
    """The distinct event ids a system posted (HubSpot batches events; Shopify names one per request)."""
    out: set[str] = set()
    for path, headers, body in list(hooks):
        if path.strip("/") == system == "crm":
            out |= {str(e["eventId"]) for e in json.loads(body)}
        elif path.strip("/") == system == "shop":
            out.add(headers["x-shopify-webhook-id"])
    return out


def wait_for_hooks(hooks: list, expected: dict[str, int], timeout: float) -> None:
    """Wait until each system posted at least its expected number of webhook events."""
    deadline = time.monotonic() + timeout
    while (got := {s: len(events(hooks, s)) for s in expected}) and any(got[s] < n for s, n in expected.items()):
        if time.monotonic() > deadline:
            raise SoakTimeout(f"webhooks did not arrive: {got} of {expected}")
        time.sleep(0.5)


def redeliver(hooks: list, receiver: str, env: dict[str, str], rng: random.Random) -> dict[str, int]:
    """Every recorded webhook request three times, shuffled, to the real receiver: answers by status."""
    endpoints = endpoints_from_landscape(load_landscape("definitions"), env)
    deliveries = [h for h in list(hooks) if h[0].strip("/") in endpoints] * 3
    rng.shuffle(deliveries)
    answers: Counter[str] = Counter()
    with httpx.Client(timeout=30) as http:
        for path, headers, body in deliveries:
            system = path.strip("/")
            url = f"{receiver}/webhooks/{system}"
            kept = {k: v for k, v in headers.items() if k not in ("host", "content-length")}
            if system == "crm":  # HubSpot signs the URL it posted to: sign for the receiver's
                kept = {k: v for k, v in kept.items() if not k.startswith("x-hubspot-")}
                kept.update(SCHEMES["hubspot_v3"].sign(body, SecretStr(env["CRM_WEBHOOK_SECRET"]), url=url))
            answers[str(http.post(url, content=body, headers=kept).status_code)] += 1
    return dict(answers)


def realtime_runs(runner: Runner) -> None:
    """Evaluate each source's realtime sensor over the inbox and run every run it requests."""
    from definitions.definitions import defs

    for job in REALTIME:
        sensor = defs.get_repository_def().get_sensor_def(f"{job}_sensor")
        instance, cursor = dg.DagsterInstance.ephemeral(), "0"  # past the first tick's initial sync
        while True:
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources))
            for request in result.run_requests:
                runner.run(job, dict(request.tags))
            if result.cursor in (None, cursor):
                break
            cursor = result.cursor


def count(expected: dict[str, Any], held: list[tuple[str, Any]], parked: set[str]) -> FlowCount:
    """Compare a consumer's records with the source's (by id and content)."""
    copies = Counter(rid for rid, _ in held)
    content = dict(held)
    arrived = {rid for rid, value in expected.items() if rid in content and content[rid] == value}
    in_dlq = (set(expected) - arrived) & parked
    lost = sorted(set(expected) - arrived - in_dlq)
    return FlowCount(sent=len(expected), arrived=len(arrived), dlq=len(in_dlq),
                     duplicated=sum(n - 1 for n in copies.values() if n > 1), lost=len(lost),
                     lost_ids=[f"{rid}: source {expected[rid]!r}, consumer {content.get(rid)!r}" for rid in lost[:5]])


def stock_moves(orders: dict[str, dict], stock_before: dict[str, int], stock_after: dict[str, int],
                invalid: set[str], refused: set[str]) -> FlowCount:
    """Orders -> warehouse: the warehouse keeps no record per order, so count per SKU: stock moved by
    exactly the lines of the valid orders not refused; a refused order must really not fit the stock."""
    served = set(orders) - invalid - refused
    moved: Counter[str] = Counter()
    for oid in served:
        for line in orders[oid]["line_items"]:
            moved[line["sku"]] += line["quantity"]
    diff = {sku: stock_before[sku] - stock_after[sku] - moved.get(sku, 0) for sku in stock_before}
    fits = sorted(oid for oid in set(orders) & refused
                  if all(stock_after.get(li["sku"], 0) >= li["quantity"] for li in orders[oid]["line_items"]))
    over = sorted(f"{sku} moved {d} too many" for sku, d in diff.items() if d > 0)
    under = sorted(f"{sku} moved {-d} too few" for sku, d in diff.items() if d < 0)
    return FlowCount(sent=len(orders), arrived=len(served) if not (over or under) else 0,
                     dlq=len(set(orders) & (invalid | refused)), duplicated=len(over), lost=len(under) + len(fits),
                     lost_ids=(over + under + [f"order {oid} refused but fits" for oid in fits])[:5])


def open_dlq(store: Store) -> dict[str, set[str]]:
    """Open DLQ record ids per flow."""
    out: dict[str, set[str]] = {}
    for row in store.rows(dlq, status="open"):
        out.setdefault(row["flow"], set()).add(str(row["record_id"]))
    return out


def reasons(store: Store) -> dict[str, int]:
    """Open DLQ entries by flow and reason (numbers blanked, so alike reasons group)."""
    return dict(Counter(f"{r['flow']}: {re.sub(r'[0-9]+', 'N', r['reason'])}"
                        for r in store.rows(dlq, status="open")).most_common())


def _price(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _lines(items: list[dict]) -> list[tuple[str, int]]:
    return sorted((li["sku"], li["quantity"]) for li in items)


def goods_before(goods: Sandbox) -> tuple[dict[str, int], dict[str, list[tuple[str, int]]]]:
    """Before the first run: stock on hand by SKU, and the lines of the 3PL's seeded instructions by
    order (adopted as they are: the 3PL takes no change to an instruction)."""
    return ({s["sku"]: s["on_hand"] for s in json_list(goods, "inventory", "/v1/stock")},
            {s["order_id"]: _lines(s["lines"]) for s in json_list(goods, "fulfilment", "/v1/shipments")})


def goods_counts(goods: Sandbox, people: Sandbox, store: Store, stock_before: dict[str, int],
                 seeded_shipments: dict[str, list[tuple[str, int]]]) -> dict[str, FlowCount]:
    """Orders, products, stock levels and shipments: source vs consumer (the order history is in
    the people's support desk), per flow."""
    parked = open_dlq(store)

    def dlq_of(flow: str, source_flow: str) -> set[str]:
        return parked.get(flow, set()) | parked.get(source_flow, set())

    orders = {str(o["id"]): o for o in shop_list(goods, "orders")}
    shipments = json_list(goods, "fulfilment", "/v1/shipments")
    stock = {s["sku"]: s for s in json_list(goods, "inventory", "/v1/stock")}
    shop_products = shop_list(goods, "products")
    erp = erp_products(goods)
    lines = {oid: seeded_shipments.get(oid) or _lines(o["line_items"]) for oid, o in orders.items()}
    out = {
        "order_shop_to_fulfilment": count(
            {oid: lines[oid] for oid, o in orders.items() if o["financial_status"] == "paid"},
            [(s["order_id"], _lines(s["lines"])) for s in shipments],
            dlq_of("order_shop_to_fulfilment", "order_shop_to_hub")),
        "order_shop_to_support": count(
            {oid: (o.get("email") or "").lower() for oid, o in orders.items()},
            [(r["external_id"], r["custom_object_fields"]["customer_email"].lower()) for r in support_records(people)],
            dlq_of("order_shop_to_support", "order_shop_to_hub")),
        "order_shop_to_inventory": stock_moves(
            orders, stock_before, {sku: s["on_hand"] for sku, s in stock.items()},
            parked.get("order_shop_to_hub", set()), parked.get("order_shop_to_inventory", set())),
        "product_legacy_erp_to_shop": count(
            {sku: (str(r["ITM_TXT"]).strip(), _price(r["UNIT_PRC"])) for sku, r in erp.items()},
            [(p["variants"][0]["sku"], (p["title"], _price(p["variants"][0]["price"]))) for p in shop_products],
            dlq_of("product_legacy_erp_to_shop", "product_legacy_erp_to_hub")),
        "product_legacy_erp_to_inventory": count(
            {sku: str(r["ITM_TXT"]).strip() for sku, r in erp.items()},
            [(sku, s["name"]) for sku, s in stock.items()],
            dlq_of("product_legacy_erp_to_inventory", "product_legacy_erp_to_hub")),
        "stock_level_inventory_to_shop": count(
            {sku: s["on_hand"] for sku, s in stock.items()},
            [(p["variants"][0]["sku"], p["variants"][0]["inventory_quantity"]) for p in shop_products],
            dlq_of("stock_level_inventory_to_shop", "stock_level_inventory_to_hub")),
    }
    out["shipment_fulfilment_to_shop"] = count(  # a shipment is known by its order
        {s["order_id"]: (SHOP_STATUS.get(s["status"], "fulfilled"), s["tracking_number"], s["carrier"])
         for s in shipments},
        [(oid, (f.get("shipment_status"), f.get("tracking_number"), f.get("tracking_company")))
         for oid, o in orders.items() if (f := o.get("fulfillment"))],
        dlq_of("shipment_fulfilment_to_shop", "shipment_fulfilment_to_hub"))
    return out


def people_counts(people: Sandbox, store: Store) -> dict[str, FlowCount]:
    """Customers, deals and engagement ratings: source vs consumer, per flow."""
    parked = open_dlq(store)

    def dlq_of(flow: str, source_flow: str) -> set[str]:
        return parked.get(flow, set()) | parked.get(source_flow, set())

    contacts = crm_list(people, "contacts")
    emails = {c["id"]: (c["properties"].get("email") or "").lower() for c in contacts}
    customers = [c for c in stripe_list(people, "customers") if c["metadata"].get("crm_contact_id")]
    by_billing_id = {c["id"]: c["metadata"]["crm_contact_id"] for c in customers}
    deals = [d for d in crm_list(people, "deals") if d["properties"]["dealstage"] == "closedwon"]
    ratings = {m["email_address"]: str(m["member_rating"]) for m in members(people)}
    users = json_pages(people, "support", "/api/v2/users.json", "users")
    return {
        "customer_crm_to_billing": count(
            {c["id"]: (emails[c["id"]], c["properties"].get("phone")) for c in contacts},
            [(c["metadata"]["crm_contact_id"], ((c.get("email") or "").lower(), c.get("phone"))) for c in customers],
            dlq_of("customer_crm_to_billing", "customer_crm_to_hub")),
        "customer_crm_to_marketing": count(
            dict(emails), [(m["merge_fields"]["CRM_ID"], m["email_address"].lower()) for m in members(people)
                           if m["merge_fields"].get("CRM_ID")],
            dlq_of("customer_crm_to_marketing", "customer_crm_to_hub")),
        "customer_crm_to_support": count(
            dict(emails), [(u["external_id"], u["email"].lower()) for u in users if u.get("external_id")],
            dlq_of("customer_crm_to_support", "customer_crm_to_hub")),
        "deal_crm_to_billing": count(
            {d["id"]: (crm_contact(d), int(Decimal(d["properties"]["amount"]) * 100)) for d in deals},
            [(i["metadata"]["deal_id"], (by_billing_id.get(i["customer"]), int(i["amount"])))
             for i in stripe_list(people, "invoiceitems") if i["metadata"].get("deal_id")],
            dlq_of("deal_crm_to_billing", "deal_crm_to_hub")),
        "engagement_marketing_to_crm": count(
            ratings, [(c["properties"]["email"], c["properties"]["hs_lead_score"]) for c in crm_list(people, "contacts")
                      if c["properties"].get("hs_lead_score") is not None],
            dlq_of("engagement_marketing_to_crm", "engagement_marketing_to_hub")),
    }


def seeded_invalid(people: Sandbox, goods: Sandbox) -> dict[str, set[str]]:
    """Records the seeds made invalid, by the hub flow that must park them."""
    shop, erp = goods.seed_report("shop")["problems"], goods.seed_report("legacy_erp")["problems"]
    return {"customer_crm_to_hub": crm_parked(people.seed_report("crm")),
            "order_shop_to_hub": set(shop["missing_email"]) | set(shop["invalid_email"]),
            "product_legacy_erp_to_hub": set(erp["missing_price"]) | set(erp["lowercase_status"]),
            "stock_level_inventory_to_hub": set(goods.seed_report("inventory")["problems"]["negative_stock"])}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`os.environ` with these values (the in-process sensors and inbox read it), restored after."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def realtime_phase(people: Sandbox, goods: Sandbox, size: dict[str, int], hooks: list, runner: Runner,
                   rng: random.Random) -> dict[str, int]:
    """Source changes, their webhooks three times shuffled through the receiver (faults on), the
    runs the real-time sensors request, then the schedules' next pass: the webhook figures."""
    hooks.clear()
    change_sources(people, goods, size, rng)
    wait_for_hooks(hooks, {"shop": size["new_orders"], "crm": size["crm_changes"]},
                   timeout=min(300, runner.remaining()))
    set_weather([people, goods], FAULTS)
    inbox = Inbox()
    with serving(create_receiver(endpoints_from_landscape(load_landscape("definitions"), runner.env),
                                 inbox)) as receiver:
        answers = redeliver(hooks, receiver, runner.env, rng)
    realtime_runs(runner)
    for jobs in STAGES:
        runner.stage(jobs, {})
    depth = {s: st.depth for s, st in inbox.stats(["crm", "shop"]).items()}
    inbox.close()
    return {**{f"answered {k}": v for k, v in answers.items()}, **{f"inbox depth {k}": v for k, v in depth.items()}}


def soak(records: int = 10_000, kills: int = 3, seed: int = 7, deadline_minutes: float = 240,
         log: Callable[[str], None] = lambda line: print(line, flush=True)) -> SoakResult:
    """Run the fault soak at this size; see the module docstring."""
    started = time.monotonic()
    rng = random.Random(seed)
    size = sizes(records)
    with tempfile.TemporaryDirectory() as tmp, recording() as (hooks_url, hooks):
        root = Path(tmp)
        with sandboxes(root, seed, size, hooks_url) as (people, goods):
            landscape = load_landscape("definitions")
            env = {**os.environ, **sandbox_env(landscape, people), **sandbox_env(landscape, goods),
                   "INTEGRATIONS_DATABASE_URL": f"sqlite:///{root / 'hub.sqlite'}",
                   "INTEGRATIONS_DATA_DIR": str(root / "data")}
            store = Store(env["INTEGRATIONS_DATABASE_URL"])
            runner = Runner(env, store, started + deadline_minutes * 60)
            close_deals(people, 3)
            stock_before, seeded_shipments = goods_before(goods)
            log(f"seeded {size} in {time.monotonic() - started:.0f} s")

            victims = {flow: rng.randint(1, max(1, size["goods"] // 20))
                       for flow in rng.sample(KILLABLE, min(kills, len(KILLABLE)))}
            set_weather([people, goods], FAULTS)
            for jobs in STAGES:
                runner.stage(jobs, victims)
                log(f"{', '.join(jobs)}: done, {runner.runs} runs, {runner.retries} retries, "
                    f"{time.monotonic() - started:.0f} s")
            set_weather([people, goods], {})  # the business edits its systems; their faults are not ours
            with environment(env):
                webhooks = realtime_phase(people, goods, size, hooks, runner, rng)
            set_weather([people, goods], {})
            log(f"real time and catch-up done: {webhooks}, {time.monotonic() - started:.0f} s")

            flows = {**goods_counts(goods, people, store, stock_before, seeded_shipments),
                     **people_counts(people, store)}
            parked = open_dlq(store)
            missing = sorted(f"{flow} {rid}" for flow, ids in seeded_invalid(people, goods).items()
                             for rid in ids - parked.get(flow, set()))
            mix = {"people (CRM contacts)": size["people"], "goods (shop orders)": size["goods"],
                   "new shop orders": size["new_orders"], "CRM changes": size["crm_changes"]}
            return SoakResult(records=sum(c.sent for c in flows.values()), mix=mix, flows=flows,
                              dlq_reasons=reasons(store), invalid_not_parked=missing, retries=runner.retries,
                              runs=runner.runs, kills=runner.kills, webhooks=webhooks,
                              seconds=round(time.monotonic() - started, 1))


def table(result: SoakResult) -> str:
    """The soak's figures as Markdown."""
    rows = ["| flow | sent | arrived | in DLQ | duplicated | lost |", "|---|---:|---:|---:|---:|---:|"]
    for name, c in result.flows.items():
        rows.append(f"| {name} | {c.sent:,} | {c.arrived:,} | {c.dlq:,} | {c.duplicated} | {c.lost} |")
    rows.append(f"| **total** | **{result.total('sent'):,}** | **{result.total('arrived'):,}** | "
                f"**{result.total('dlq'):,}** | **{result.total('duplicated')}** | **{result.total('lost')}** |")
    reasons_md = "\n".join(f"| {r} | {n:,} |" for r, n in result.dlq_reasons.items())
    mix = ", ".join(f"{k} {v:,}" for k, v in result.mix.items())
    return (f"Mix: {mix}. Retried calls: {result.retries:,} over {result.runs} runs; SIGKILLs: "
            f"{'; '.join(result.kills) or 'none'}; webhooks: {result.webhooks}; wall time {result.seconds:,.0f} s.\n\n"
            + "\n".join(rows) + "\n\n| in DLQ: flow and reason | entries |\n|---|---:|\n" + reasons_md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--deadline-minutes", type=float, default=240)
    parser.add_argument("--no-publish", action="store_true", help="print only; leave docs/reliability.* as they are")
    args = parser.parse_args()
    result = soak(args.records, args.kills, deadline_minutes=args.deadline_minutes)
    print(table(result))
    if not args.no_publish:
        from benchmarks._report import publish

        figures = {"records": result.records, "mix": result.mix, "retries": result.retries, "runs": result.runs,
                   "kills": result.kills, "webhooks": result.webhooks, "seconds": result.seconds,
                   "dlq_reasons": result.dlq_reasons, "invalid_not_parked": result.invalid_not_parked,
                   **{k: result.total(k) for k in ("sent", "arrived", "dlq", "duplicated", "lost")},
                   "flows": {n: vars(c) for n, c in result.flows.items()}}
        publish("soak", figures, table(result), doc="reliability")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()

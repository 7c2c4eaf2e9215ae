"""Stripe invoice items in and invoices/charges out, against localstripe."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from integration_project.connectors import Ours, connector_class, selected
from integration_project.connectors.stripe import Stripe, to_decimal, to_minor
from integration_project.errors import PermanentError, StopRun
from integration_project.runtime import Store, ingest
from integration_project.runtime.store import hub_records
from integration_sandbox.testing import Patient, billing_invoice, free_port_sandbox
from tests.connectors.conftest import drain


def test_money_is_decimal_in_the_hub_and_minor_units_in_stripe():
    assert to_decimal({"amount_due": 123456, "currency": "eur"}) | {} == {"amount_due": "1234.56", "currency": "EUR"}
    assert to_minor({"amount": "1234.56", "currency": "EUR"}) == {"amount": 123456, "currency": "eur"}
    assert to_minor({"amount": "500", "currency": "JPY"}) == {"amount": 500, "currency": "jpy"}
    assert Decimal(to_decimal({"amount": 500, "currency": "jpy"})["amount"]) == 500


def test_a_deal_becomes_one_invoice_item_updated_in_place(connector, sandbox):
    stripe = connector("billing")
    customer = sandbox.seed_report("billing")["customers"][0]
    item = {"metadata": {"deal_id": "9101"}, "customer": customer, "amount": "1500.00", "currency": "EUR",
            "description": "Deal 9101"}
    created = stripe.upsert("invoiceitems", None, item)
    assert stripe.upsert("invoiceitems", created, {**item, "amount": "1750.50"}) == created
    assert stripe.index("invoiceitems", "metadata.deal_id")["9101"] == created
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:
        held = api.get(f"/v1/invoiceitems/{created}").json()
        card = api.post("/v1/payment_methods", data={"type": "card", "card[number]": "4242424242424242",
                                                      "card[exp_month]": "12", "card[exp_year]": "2030",
                                                      "card[cvc]": "123"}).json()["id"]
        charge = api.post("/v1/charges", data={"amount": "2599", "currency": "eur", "source": card})
    assert int(held["amount"]) == 175050 and held["currency"] == "eur"  # localstripe echoes the form's text
    charges, cursor = drain(stripe, "charges", None)
    assert cursor and "@" in cursor  # the newest charge event when the list was read: the next run reads from it
    assert charge.status_code == 200, charge.text
    assert {"amount": "25.99", "currency": "EUR"}.items() <= next(
        c for c in charges if c["id"] == charge.json()["id"]).items()



def test_invoices_come_out_in_decimal_units_with_iso_currencies(connector, sandbox):
    stripe = connector("billing")
    customer = sandbox.seed_report("billing")["customers"][1]
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:
        # localstripe invoices only customers with a subscription: give this one a free plan
        api.post("/v1/plans", data={"id": "free", "amount": "0", "currency": "eur", "interval": "month",
                                    "product[name]": "Free plan"})
        api.post("/v1/subscriptions", data={"customer": customer, "items[0][plan]": "free"}).raise_for_status()
        api.post("/v1/invoiceitems", data={"customer": customer, "amount": "4990", "currency": "eur"})
        created = api.post("/v1/invoices", data={"customer": customer}).json()["id"]
    invoices, cursor = drain(stripe, "invoices", None)
    assert cursor and "@" in cursor
    mine = next(i for i in invoices if i["id"] == created)
    assert (mine["amount_due"], mine["currency"], mine["status"]) == ("49.90", "EUR", "draft")


def test_amounts_follow_each_currencys_exponent_and_an_inexact_one_is_refused():
    """Stripe's published exponents: JPY none, EUR two, KWD/BHD three (in tens of thousandths)."""
    assert to_minor({"amount": "1.5", "currency": "KWD"})["amount"] == 1500
    assert to_decimal({"amount": 1500, "currency": "kwd"})["amount"] == "1.500"
    assert to_decimal({"amount_due": 12340, "currency": "bhd"})["amount_due"] == "12.340"
    assert to_minor({"amount": "500", "currency": "JPY"})["amount"] == 500
    for amount, currency in (("1.234", "KWD"), ("12.345", "EUR"), ("0.5", "JPY"), ("ten", "EUR")):
        with pytest.raises(PermanentError, match="amount"):
            to_minor({"amount": amount, "currency": currency})


class _LoseFirstCreateAnswer(httpx.BaseTransport):
    """The real sandbox behind it; the first create's answer is lost after Stripe acted on it."""

    def __init__(self) -> None:
        self.inner, self.sent, self.lost = httpx.HTTPTransport(), [], False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        response = self.inner.handle_request(request)
        response.read()
        if request.method == "POST" and not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_retried_create_reuses_its_idempotency_key_and_lists_nothing(env, landscape, sandbox):
    declared = landscape.systems["billing"]
    transport = _LoseFirstCreateAnswer()
    stripe = connector_class(declared)(declared.api, transport=transport)
    customer = {"email": "idem@example.com", "name": "Idem Potent", "metadata": {"crm_contact_id": "idem-1"}}
    try:
        created = stripe.upsert("customers", None, customer, Ours("metadata.crm_contact_id", "idem-1"))
    finally:
        stripe.close()
    posts = [r for r in transport.sent if r.method == "POST"]
    assert transport.lost and len(posts) == 2 and [r for r in transport.sent if r.method == "GET"] == []
    keys = {r.headers.get("Idempotency-Key") for r in posts}
    assert len(keys) == 1 and None not in keys
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:
        mine = [c["id"] for c in api.get("/v1/customers", params={"limit": 100}).json()["data"]
                if c["metadata"].get("crm_contact_id") == "idem-1"]
    assert mine == [created]


def test_a_restricted_keys_403_stops_the_run_at_the_first_write(env, landscape):
    """localstripe has no restricted keys; Stripe's answer to one, as Stripe documents it."""
    refused = {"error": {"type": "invalid_request_error",
                         "message": "The provided key 'rk_test_...' does not have the required permissions "
                                    "for this endpoint on account 'acct_1'."}}
    declared = landscape.systems["billing"]
    stripe = connector_class(declared)(declared.api, transport=httpx.MockTransport(
        lambda request: httpx.Response(403, json=refused)))
    with pytest.raises(StopRun, match="403"):
        stripe.upsert("customers", None, {"email": "a@example.com"}, Ours("metadata.crm_contact_id", "1"))


def test_a_create_answered_409_in_flight_is_tried_again_under_the_same_key(env, landscape, monkeypatch):
    """Stripe's 409: the same Idempotency-Key still in flight; its SDKs retry it, so do we."""
    monkeypatch.setattr("integration_project.connectors.http._RetryAfter.__call__", lambda self, state: 0.0)
    answers = iter([httpx.Response(409, json={"error": {"type": "idempotency_error"}}),
                    httpx.Response(200, json={"id": "cus_409"})])
    sent: list[httpx.Request] = []
    declared = landscape.systems["billing"]
    stripe = connector_class(declared)(declared.api, transport=httpx.MockTransport(
        lambda request: sent.append(request) or next(answers)))
    assert stripe.upsert("customers", None, {"email": "a@example.com"}, Ours("metadata.crm_contact_id", "1")) == "cus_409"
    assert len({r.headers["Idempotency-Key"] for r in sent}) == 1 and len(sent) == 2


class _Counting(httpx.BaseTransport):
    """The real sandbox behind it; every request sent, by method and path."""

    def __init__(self) -> None:
        self.inner, self.sent = httpx.HTTPTransport(), []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)


def test_an_invoice_paid_after_a_run_reaches_the_hub_with_the_next_run_which_reads_only_it(
        env, landscape, sandbox, tmp_path):
    """Stripe's lists filter on `created` only and an invoice is paid after it is created: the
    second run finds the change in the events list and reads that one invoice, not the list."""
    flow = next(f for f in landscape.flows() if f.source.name == "billing" and f.source_binding.resource == "invoices")
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth, transport=Patient()) as api:
        customer = api.post("/v1/customers", data={"email": "paid.later@example.com"}).json()["id"]
        invoice = billing_invoice(api, customer, 4990)
        store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
        store.mark_delivery("billing", "customer", "paid-later-1", "h", "done", customer)  # as the customer flow would
        transport = _Counting()
        billing = connector_class(landscape.systems["billing"])(landscape.systems["billing"].api, transport=transport)
        try:
            first = ingest(billing, flow.ingest, store, "run-1")
            with store.engine.connect() as conn:
                assert store.hub_data(conn, "invoice", [invoice])[invoice]["status"] == "draft"
            assert first.cursor and first.read >= 2  # every invoice: ours and the subscription's, at least
            transport.sent.clear()
            api.post(f"/v1/invoices/{invoice}/pay").raise_for_status()
            second = ingest(billing, flow.ingest, store, "run-2")
        finally:
            billing.close()
    with store.engine.connect() as conn:
        assert store.hub_data(conn, "invoice", [invoice])[invoice]["status"] == "paid"
    assert (second.read, second.written) == (1, 1)  # only what changed
    assert "GET /v1/invoices" not in transport.sent and f"GET /v1/invoices/{invoice}" in transport.sent
    assert second.cursor and second.cursor != first.cursor


def test_a_draft_invoice_deleted_after_a_run_reaches_the_hub_as_a_tombstone(env, landscape, sandbox, tmp_path):
    """Stripe deletes a draft invoice for good (it cannot be read again) and says so with an
    `invoice.deleted` event, whose object is the invoice as it was: the next run tombstones it."""
    flow = next(f for f in landscape.flows() if f.source.name == "billing" and f.source_binding.resource == "invoices")
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth, transport=Patient()) as api:
        customer = api.post("/v1/customers", data={"email": "deleted.draft@example.com"}).json()["id"]
        invoice = billing_invoice(api, customer, 1250)
        store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
        store.mark_delivery("billing", "customer", "deleted-draft-1", "h", "done", customer)  # its customer is ours
        transport = _Counting()
        billing = connector_class(landscape.systems["billing"])(landscape.systems["billing"].api, transport=transport)
        try:
            assert ingest(billing, flow.ingest, store, "run-1").deleted == 0
            assert store.rows(hub_records, record_id=invoice)[0]["deleted_at"] is None
            deleted = api.delete(f"/v1/invoices/{invoice}")
            assert deleted.json() == {"id": invoice, "object": "invoice", "deleted": True}
            assert api.get(f"/v1/invoices/{invoice}").status_code == 404
            (announced,) = [e for e in api.get("/v1/events", params={"type": "invoice.deleted"}).json()["data"]
                            if e["data"]["object"]["id"] == invoice]
            assert announced["data"]["object"]["status"] == "draft"
            transport.sent.clear()
            second = ingest(billing, flow.ingest, store, "run-2")
            third = ingest(billing, flow.ingest, store, "run-3")
        finally:
            billing.close()
    (row,) = store.rows(hub_records, record_id=invoice)
    assert (second.deleted, third.deleted) == (1, 0) and row["deleted_at"] is not None
    assert f"GET /v1/invoices/{invoice}" not in transport.sent  # the event names it deleted: not read again


def test_a_charge_paying_an_invoice_comes_with_that_invoices_id_read_from_invoice_payments(env, landscape, sandbox):
    """Stripe's charges no longer name their invoice: each comes with the one its payment intent pays,
    one InvoicePayments call per intent, in a full read and in one from the events cursor; a
    connector whose bindings map no `invoice` makes no such call."""
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    transport = _Counting()
    system = landscape.systems["billing"]
    billing = selected(Stripe(system.api, transport=transport), system, system.api)
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth, transport=Patient()) as api:
        customer = api.post("/v1/customers", data={"email": "invoice.payer@example.com"}).json()["id"]
        first = billing_invoice(api, customer, 1500)
        api.post(f"/v1/invoices/{first}/pay").raise_for_status()
        card = api.get("/v1/customers/" + customer).json()["invoice_settings"]["default_payment_method"]
        direct = api.post("/v1/charges", data={"amount": "700", "currency": "eur", "source": card}).json()["id"]
        try:
            charges, cursor = drain(billing, "charges", None)
            full, retried = transport.sent.count("GET /v1/invoice_payments"), billing.retries()
            transport.sent.clear()
            api.post("/v1/invoiceitems", data={"customer": customer, "amount": "2500", "currency": "eur"})
            second = api.post("/v1/invoices", data={"customer": customer}).raise_for_status().json()["id"]
            api.post(f"/v1/invoices/{second}/pay").raise_for_status()
            changed, _ = drain(billing, "charges", cursor)
            retried_since = billing.retries() - retried
        finally:
            billing.close()
    by_id = {c["id"]: c for c in charges}
    assert [c["invoice"] for c in charges if c["customer"] == customer].count(first) == 1
    assert by_id[direct]["invoice"] is None  # a charge without a payment intent pays no invoice
    intents = len({c["payment_intent"] for c in charges if c["payment_intent"]})
    assert intents <= full <= intents + retried  # once per intent, but for a call retried (a 429 waited out)
    assert [(c["amount"], c["invoice"]) for c in changed] == [("25.00", second)]
    assert 1 <= transport.sent.count("GET /v1/invoice_payments") <= 1 + retried_since
    transport.sent.clear()
    unmapped = Stripe(system.api, transport=transport)
    try:
        assert "invoice" not in drain(unmapped, "charges", None)[0][0]
    finally:
        unmapped.close()
    assert "GET /v1/invoice_payments" not in transport.sent and transport.sent


def test_a_burst_of_writes_at_stripes_limit_is_never_lost_and_the_declared_pace_meets_no_429(
        env, landscape, tmp_path):
    """The sandbox limits as Stripe does in test mode, 25 requests per window, the window stretched
    from 1 s to 5 s (and the declared pace with it) so a loaded machine still outruns it: bursts from
    several threads without pacing are answered 429 and waited out, every customer made once; with
    the declared pace (requests_per_second) a burst is never answered 429, counted at the sandbox."""
    stretch = 5
    options = {"billing": {"rate_limit_per_second": 25, "rate_limit_window_seconds": stretch}}
    with free_port_sandbox(tmp_path, ["billing"], seed=5, size=5, options=options) as sb:
        declared = landscape.systems["billing"].api
        assert declared.requests_per_second is not None and declared.requests_per_second < 25
        api = declared.model_copy(update={"base_url": sb.url("billing"), "base_url_env": None})
        auth = {"Authorization": f"Bearer {sb.token('billing')}"}
        made: list[str] = []

        def limited() -> int:
            return httpx.get(sb.url("billing") + "/_sandbox/requests", headers=auth).json()["rate_limited"]

        def burst(api, tag: str, count: int) -> None:
            billing, lock = Stripe(api), threading.Lock()

            def create(i: int) -> None:
                record = {"email": f"{tag}{i}@example.com", "metadata": {"crm_contact_id": f"{tag}-{i}"}}
                made_id = billing.upsert("customers", None, record, Ours("metadata.crm_contact_id", f"{tag}-{i}"))
                with lock:
                    made.append(made_id)

            try:
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(create, range(count)))
            finally:
                billing.close()

        unpaced = api.model_copy(update={"requests_per_second": None})
        for round_ in range(5):  # until the sandbox has refused some (a loaded machine may be slow to)
            burst(unpaced, f"burst{round_}-", 40)
            if (refused := limited()) > 0:
                break
        assert refused > 0 and len(set(made)) == len(made) == 40 * (round_ + 1)  # 429s waited out, none lost
        deadline = time.monotonic() + 60  # the unpaced burst out of the sandbox's window first
        while time.time() - max(httpx.get(sb.url("billing") + "/_sandbox/requests", headers=auth).json()["arrived"]) \
                < stretch and time.monotonic() < deadline:
            time.sleep(0.2)
        burst(api.model_copy(update={"requests_per_second": declared.requests_per_second / stretch}), "paced-", 40)
        assert limited() == refused  # the declared pace stays under the limit
        held, after = [], {}
        with httpx.Client(base_url=sb.url("billing"), headers=auth) as http:
            while True:
                page = http.get("/v1/customers", params={"limit": 100, **after}).json()
                held += [c["id"] for c in page["data"] if c["metadata"].get("crm_contact_id", "").startswith(
                    ("burst", "paced-"))]
                if not page["has_more"]:
                    break
                after = {"starting_after": page["data"][-1]["id"]}
        assert sorted(held) == sorted(made)  # each made once, at Stripe too


def test_a_cursor_whose_events_stripe_no_longer_keeps_means_a_full_read(env, landscape, sandbox):
    """Stripe lists events for 30 days: a cursor within a day of that, or whose event is gone, reads
    the whole list again (and notes the newest event); one set when no event existed reads them all."""
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:  # an invoice, so an invoice event
        customer = api.post("/v1/customers", data={"email": "stale.cursor@example.com"}).json()["id"]
        api.post("/v1/plans", data={"id": "free-stale", "amount": "0", "currency": "eur", "interval": "month",
                                    "product[name]": "Free plan"})
        api.post("/v1/subscriptions", data={"customer": customer, "items[0][plan]": "free-stale"}).raise_for_status()
    declared = landscape.systems["billing"]
    transport = _Counting()
    billing = connector_class(declared)(declared.api, transport=transport)
    try:
        full, mark = drain(billing, "invoices", None)
        assert mark and mark.startswith("evt_")
        for stale in (f"{mark.partition('@')[0]}@{int(time.time()) - 29 * 86400 - 60}", f"evt_gone@{int(time.time())}"):
            transport.sent.clear()
            again, cursor = drain(billing, "invoices", stale)
            assert "GET /v1/invoices" in transport.sent, (stale, mark, transport.sent)
            assert {r["id"] for r in again} == {r["id"] for r in full}
            assert cursor == mark  # nothing changed since: the same newest event
        transport.sent.clear()
        assert drain(billing, "invoices", f"@{int(time.time())}")[1] == mark  # every invoice event listed is newer
        assert "GET /v1/invoices" not in transport.sent and "GET /v1/events" in transport.sent
    finally:
        billing.close()


def test_a_scan_of_a_loaded_list_reads_it_whole_without_events(connector, sandbox):
    """Customers (loaded, not extracted) have no events cursor: a scan is the plain list."""
    customers = {c["id"] for c in connector("billing").scan("customers")}
    assert set(sandbox.seed_report("billing")["customers"]) <= customers

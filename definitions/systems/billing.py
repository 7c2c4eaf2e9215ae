"""Billing (Stripe-like): invoices and payments; needs customers and closed-won deals."""

from integration_project import Api, Auth, Binding, System, Volume, Webhook

billing = System(
    name="billing",
    title="Billing",
    vendor="Stripe",
    kind="stripe",
    owners=["team:finance"],
    description="Subscriptions, invoices and card payments.",
    api=Api(
        connector="stripe",
        base_url="http://127.0.0.1:8102",
        base_url_env="BILLING_BASE_URL",
        version="2026-10-28.endive",  # the pinned `stripe` package's (localstripe ignores the header)
        docs_url="https://docs.stripe.com/api/customers",
        auth=Auth(type="bearer", token_env="BILLING_API_KEY"),
        # Stripe allows 25 requests a second in test mode (100 live), every flow and process together:
        # stay under it (https://docs.stripe.com/rate-limits)
        requests_per_second=20,
    ),
    webhook=Webhook(scheme="stripe", secret_env="BILLING_WEBHOOK_SECRET"),
    bindings=[
        Binding(
            object="customer",
            role="consumer",
            purpose="Every customer needs a billing account before they can be invoiced.",
            resource="customers",
            mode="realtime",
            cron="*/15 * * * *",
            mapping={"id": "metadata.crm_contact_id", "email": "email", "phone": "phone",
                     "country": "address.country"},
            compose={"name": "{first_name} {last_name}"},
            volume=Volume(min=0, max=5000),
            freshness_minutes=30,
            on_delete="delete",  # an erased customer keeps no billing account (its invoices stay in Stripe)
        ),
        Binding(
            object="deal",
            role="consumer",
            purpose="A closed-won deal is billed (a pending invoice item) without re-keying.",
            # localstripe invoices only customers with a subscription: the deal becomes an invoice
            # item, which Stripe bills on the customer's next invoice
            resource="invoiceitems",
            mode="realtime",
            where={"stage": ["closedwon"]},
            mapping={"id": "metadata.deal_id", "customer_id": "customer", "amount": "amount",
                     "currency": "currency"},
            compose={"description": "{name}"},
        ),
        Binding(
            object="invoice",
            role="source",
            purpose="Billing issues the invoices; finance reconciles them here.",
            resource="invoices",
            events=["invoice.created", "invoice.updated", "invoice.paid", "invoice.deleted"],
            mapping={"id": "id", "customer_id": "customer", "amount_due": "amount_due",
                     "currency": "currency", "status": "status", "updated_at": "created"},
        ),
        Binding(
            object="payment",
            role="source",
            purpose="Payments are captured by billing; nobody else records them.",
            resource="charges",
            cron="15 * * * *",
            events=["charge.succeeded"],
            # a charge no longer names its invoice (Stripe 2025-03-31): the connector fills `invoice` from InvoicePayments
            mapping={"id": "id", "invoice_id": "invoice", "amount": "amount",
                     "currency": "currency", "status": "status", "paid_at": "created"},
        ),
    ],
)

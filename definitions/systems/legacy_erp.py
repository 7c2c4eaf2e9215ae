"""Legacy ERP: an old SQL database plus a nightly CSV export; masters the product catalog."""

from integration_project import Api, Auth, Binding, System

legacy_erp = System(
    name="legacy_erp",
    title="Legacy ERP",
    vendor="In-house ERP",
    kind="sql",
    owners=["team:operations", "erp-admin@example.com"],
    description="The 20-year-old ERP: reached through its database and nightly CSV files.",
    api=Api(
        connector="sql",
        base_url="sqlite:///.data/sandbox/legacy_erp.sqlite",
        base_url_env="ERP_DATABASE_URL",
        version="schema-7",
        auth=Auth(type="none"),
    ),
    bindings=[
        Binding(
            object="product",
            role="source",
            purpose="Purchasing maintains the catalog and prices in the ERP, nowhere else.",
            resource="ARTIKEL",
            mapping={"sku": "ARTNR", "name": "BEZEICHNUNG", "price": "VKPREIS",
                     "currency": "WAEHRUNG", "active": "AKTIV", "updated_at": "GEAENDERT_AM"},
        ),
        Binding(
            object="invoice",
            role="consumer",
            purpose="Accounting books every invoice in the ERP's ledger.",
            resource="RECHNUNG",
            cron="30 1 * * *",
            timezone="Europe/Berlin",
            mapping={"id": "RECHNR", "customer_id": "KUNDNR", "amount_due": "BETRAG",
                     "currency": "WAEHRUNG", "status": "STATUS"},
        ),
    ],
)

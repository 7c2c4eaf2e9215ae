"""Legacy ERP: masters the product catalog, exported as CSV every night; invoices go into its database."""

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
            # the ERP exports its whole catalog every night; the database is read for nothing else
            api=Api(connector="csv", base_url=".data/sandbox/legacy_erp_drop", base_url_env="ERP_DROP_FOLDER",
                    version="ITM_MST export"),
            resource="ITM_MST_*.csv?encoding=latin-1&delimiter=;&decimal=,&datetime=%d.%m.%Y %H:%M:%S",
            mapping={"sku": "ITM_NO", "name": "ITM_TXT", "price": "UNIT_PRC",
                     "currency": "CUR_CD", "active": "STAT_CD", "updated_at": "CHG_TS"},
        ),
        Binding(
            object="invoice",
            role="consumer",
            purpose="Accounting books every invoice in the ERP's ledger.",
            resource="INV_HDR",
            cron="30 1 * * *",
            timezone="Europe/Berlin",
            mapping={"id": "INV_NO", "customer_id": "CUST_NO", "amount_due": "TOT_AMT",
                     "currency": "CUR_CD"},
            # the ERP keeps a one-letter status (d, o, p, v, u) and the invoice date beside its change time
            compose={"STAT_CD": "{status:.1}", "INV_DT": "{updated_at:.10}", "CHG_TS": "{updated_at}"},
        ),
    ],
)

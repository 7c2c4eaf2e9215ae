"""Web shop (Shopify-like): the source of truth for orders; shows stock and shipping status."""

from integration_project import Api, Auth, Binding, System, Webhook

shop = System(
    name="shop",
    title="Web shop",
    vendor="Shopify",
    kind="shopify",
    owners=["team:ecommerce"],
    description="The online store: catalog display, checkout and orders.",
    api=Api(
        connector="shopify",
        base_url="http://127.0.0.1:8104",
        base_url_env="SHOP_BASE_URL",
        version="2026-10",
        docs_url="https://shopify.dev/docs/api/admin-graphql/2026-10",
        # a custom app's client-credentials grant: tokens live 24 hours, sent bare in Shopify's header
        auth=Auth(type="oauth2_client_credentials", client_id_env="SHOP_CLIENT_ID",
                  client_secret_env="SHOP_CLIENT_SECRET", token_url="/admin/oauth/access_token",
                  client_auth="post", header="X-Shopify-Access-Token"),
    ),
    webhook=Webhook(scheme="shopify", secret_env="SHOP_WEBHOOK_SECRET"),
    bindings=[
        Binding(
            object="order",
            role="source",
            purpose="Customers place orders in the shop; every other system follows it.",
            resource="orders",
            # an order deleted in the shop is known only from its webhook: Shopify lists no deleted orders
            events=["orders/create", "orders/updated", "orders/delete"],
            mapping={"id": "id", "customer_email": "email", "lines": "line_items",
                     "total": "total_price", "currency": "currency",
                     "status": "financial_status", "updated_at": "updated_at"},
        ),
        Binding(
            object="product",
            role="consumer",
            purpose="The shop sells what the ERP's catalog lists, at the ERP's prices.",
            resource="products",
            mode="realtime",  # when the ERP's nightly export lands
            mapping={"sku": "variants.0.sku", "name": "title", "price": "variants.0.price"},
        ),
        Binding(
            object="stock_level",
            role="consumer",
            purpose="The shop stops selling what the warehouse does not have.",
            resource="variants",
            cron="*/15 * * * *",
            # read as the variant's inventoryQuantity, written with inventorySetQuantities at the shop's location
            mapping={"id": "variants.0.sku", "on_hand": "variants.0.inventory_quantity"},
        ),
        Binding(
            object="shipment",
            role="consumer",
            purpose="Customers see their parcel's status in their order page.",
            resource="fulfillments",
            mode="realtime",
            echo_suppression=True,
            mapping={"order_id": "order_id", "carrier": "tracking_company",
                     "tracking_number": "tracking_number", "status": "shipment_status"},
            # Shopify's fulfillment event statuses: a parcel on its way is in transit; the 3PL's steps
            # before it leaves, and a cancelled one, are no event at the shop (not sent)
            values={"status": {"received": None, "picked": None, "shipped": "in_transit",
                               "delivered": "delivered", "cancelled": None}},
        ),
    ],
)

"""Fulfilment (a 3PL): ships orders and reports shipments."""

from integration_project import Api, Auth, Binding, System, Webhook

fulfilment = System(
    name="fulfilment",
    title="Fulfilment (3PL)",
    vendor="3PL partner",
    kind="fulfilment",
    owners=["team:operations"],
    description="The logistics partner that picks, packs and ships orders.",
    api=Api(
        connector="rest",
        base_url="http://127.0.0.1:8106",
        base_url_env="FULFILMENT_BASE_URL",
        version="1",
        auth=Auth(type="oauth2_client_credentials", client_id_env="FULFILMENT_CLIENT_ID",
                  client_secret_env="FULFILMENT_CLIENT_SECRET", token_url="/oauth/token"),
    ),
    webhook=Webhook(scheme="standard_webhooks", secret_env="FULFILMENT_WEBHOOK_SECRET"),
    bindings=[
        Binding(
            object="shipment",
            role="source",
            purpose="The 3PL knows where each parcel is.",
            resource="shipments",
            events=["shipment.updated"],
            mapping={"id": "id", "order_id": "order_id", "carrier": "carrier",
                     "tracking_number": "tracking_number", "status": "status", "updated_at": "updated_at"},
        ),
        Binding(
            object="order",
            role="consumer",
            purpose="Each paid order becomes a fulfilment instruction within seconds.",
            resource="shipments",
            mode="realtime",
            where={"status": ["paid"]},
            mapping={"id": "order_id", "lines": "lines"},
        ),
    ],
)

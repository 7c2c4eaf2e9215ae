"""Fulfilment (a 3PL): ships orders and reports shipments."""

from integration_project import Api, Auth, Binding, System, Webhook
from integration_project.model.rest import Call, Conflict, Endpoint, Incremental, Lookup, Paginator, Resource, Write

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
        # a plain JSON API: {"data": [...], "next_cursor": ...} pages in modification-time order
        defaults=Endpoint(data_selector="data",
                          paginator=Paginator(type="cursor", cursor_path="next_cursor", limit=500)),
        resources={
            "shipments": Resource(
                path="/v1/shipments",
                incremental=Incremental(start_param="updated_since", cursor_path="updated_at"),
                write=Write(
                    # one instruction per order; the 3PL takes no change to one (no update): a later
                    # version of the order is acknowledged without a call
                    create=Call(path="/v1/shipments"),
                    # safe to send again: a second instruction for the order answers 409 with its id
                    conflict=Conflict(status=409, id_path="shipment_id"),
                    lookup=Lookup(id_path="id"),
                ),
            ),
        },
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

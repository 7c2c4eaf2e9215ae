"""Support desk (Zendesk-like): tickets; shows agents the customer and their orders."""

from integration_project import Api, Auth, Binding, System

support = System(
    name="support",
    title="Support desk",
    vendor="Zendesk",
    kind="zendesk",
    owners=["team:support"],
    description="Customer tickets and the agents' view of each customer.",
    api=Api(
        connector="zendesk",
        base_url="http://127.0.0.1:8103",
        base_url_env="SUPPORT_BASE_URL",
        version="v2",
        docs_url="https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/",
        auth=Auth(type="basic", username_env="SUPPORT_EMAIL", password_env="SUPPORT_TOKEN"),  # an API token
        requests_per_second=11,  # Zendesk allows 700 a minute per account; stay under it across flows
    ),
    bindings=[
        Binding(
            object="ticket",
            role="source",
            purpose="Customers open tickets in the support desk; it owns them.",
            resource="tickets",
            cron="*/30 * * * *",
            mapping={"id": "id", "customer_email": "requester.email", "subject": "subject",
                     "status": "status", "priority": "priority", "updated_at": "updated_at"},
        ),
        Binding(
            object="customer",
            role="consumer",
            purpose="Agents see who is asking without looking the customer up in the CRM.",
            resource="users",
            cron="0 * * * *",
            mapping={"id": "external_id", "email": "email", "phone": "phone"},
            compose={"name": "{first_name} {last_name}"},
            on_delete="delete",  # Zendesk soft-deletes: the user turns inactive, their tickets stay
        ),
        Binding(
            object="order",
            role="consumer",
            purpose="Agents answer 'where is my order' from the order history in the ticket view.",
            resource="orders",
            cron="*/30 * * * *",
            mapping={"id": "external_id", "customer_email": "custom_object_fields.customer_email",
                     "status": "custom_object_fields.status", "total": "custom_object_fields.total",
                     "currency": "custom_object_fields.currency"},
            compose={"name": "Order {id}"},
        ),
    ],
)

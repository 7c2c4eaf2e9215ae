"""CRM (HubSpot-like): the source of truth for customers and deals."""

from integration_project import Api, Auth, Binding, System, Webhook

crm = System(
    name="crm",
    title="CRM",
    vendor="HubSpot",
    kind="hubspot",
    owners=["team:sales-ops"],
    description="Sales pipeline: contacts, companies and deals.",
    api=Api(
        connector="hubspot",
        base_url="http://127.0.0.1:8101",
        base_url_env="CRM_BASE_URL",
        version="2026-03",
        docs_url="https://developers.hubspot.com/docs/api/crm/contacts",
        auth=Auth(type="bearer", token_env="CRM_TOKEN"),
    ),
    webhook=Webhook(scheme="hubspot_v3", secret_env="CRM_WEBHOOK_SECRET"),
    bindings=[
        Binding(
            object="customer",
            role="source",
            purpose="Sales enters every customer in the CRM first; it is the customer master.",
            resource="contacts",
            events=["contact.creation", "contact.propertyChange", "contact.deletion"],
            mapping={
                "id": "id",
                "email": "properties.email",
                "first_name": "properties.firstname",
                "last_name": "properties.lastname",
                "company": "properties.company",
                "country": "properties.country",
                "phone": "properties.phone",
                "updated_at": "updatedAt",
            },
        ),
        Binding(
            object="deal",
            role="source",
            purpose="Deals are worked in the CRM; a closed-won deal must be invoiced.",
            resource="deals",
            events=["deal.propertyChange"],
            mapping={
                "id": "id",
                "name": "properties.dealname",
                "customer_id": "associations.contacts.results.0.id",  # the deal's first associated contact
                "amount": "properties.amount",
                "stage": "properties.dealstage",
                "close_date": "properties.closedate",
                "updated_at": "updatedAt",
            },
        ),
        Binding(
            object="engagement",
            role="consumer",
            purpose="Marketing engagement raises the lead score sales works from.",
            resource="contacts",
            mode="batch",
            cron="0 * * * *",
            mapping={"email": "properties.email", "score": "properties.hs_lead_score"},
        ),
    ],
)

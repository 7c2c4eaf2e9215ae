"""The example business's canonical data objects: the hub's shape of each, and its steward.

The invoice is declared in YAML instead, by its fields: objects/invoice/defs.yaml.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, model_validator
from pydantic_extra_types.country import CountryAlpha2

from integration_project import DataObject, Email


Country = Annotated[CountryAlpha2, BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
# The ERP codes a product's status A (active), S (blocked), X (discontinued); any other code is invalid.
ErpActive = Annotated[bool, BeforeValidator(lambda v: {"A": True, "S": False, "X": False}.get(v, v))]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]  # Shopify, Zendesk: numbers


class Customer(BaseModel):
    """A person who buys from us."""

    id: str
    email: Email
    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    company: str | None = None
    country: Country
    phone: str | None = None
    updated_at: datetime


class Deal(BaseModel):
    """A sales opportunity; closed-won deals are invoiced."""

    id: str
    name: str
    customer_id: str
    amount: Money
    currency: Currency = Field("EUR", description="HubSpot leaves it empty for the portal's currency, EUR")
    stage: str
    close_date: datetime | None = None
    updated_at: datetime


class Payment(BaseModel):
    """Money received against an invoice."""

    id: str
    invoice_id: str | None = Field(None, description="The invoice it paid, if any (Stripe's InvoicePayment "
                                                     "of the charge's payment intent)")
    amount: Money
    currency: Currency
    status: str
    paid_at: datetime


class Ticket(BaseModel):
    """A support request."""

    id: Id
    customer_email: Email
    subject: str
    status: Literal["new", "open", "pending", "hold", "solved", "closed"]
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    order_id: str | None = None
    updated_at: datetime


class OrderLine(BaseModel):
    """One product line of an order."""

    sku: str
    quantity: int = Field(gt=0)
    price: Money = Field(description="unit price")


class Order(BaseModel):
    """A web-shop order."""

    id: Id
    customer_email: Email
    lines: list[OrderLine] = Field(min_length=1)
    total: Money
    currency: Currency
    status: str
    updated_at: datetime


class Product(BaseModel):
    """A catalog item with its price."""

    sku: str
    name: Text
    price: Money
    currency: Currency
    active: ErpActive
    updated_at: datetime


class StockLevel(BaseModel):
    """Units on hand of one product in one warehouse."""

    id: str
    sku: str
    warehouse: str
    on_hand: int = Field(ge=0)
    updated_at: datetime


class Shipment(BaseModel):
    """A parcel sent for an order (the 3PL ships each order in one parcel)."""

    id: str
    order_id: str
    carrier: str | None = None
    tracking_number: str | None = None
    status: Literal["received", "picked", "shipped", "delivered", "cancelled"]
    updated_at: datetime

    @model_validator(mode="after")
    def _tracked(self) -> "Shipment":
        if self.status in ("shipped", "delivered") and not self.tracking_number:
            raise ValueError("a shipped parcel needs a tracking number")
        return self


class Project(BaseModel):
    """A piece of client work the services team plans, runs and closes."""

    id: Id
    code: Text
    name: Text
    status: Literal["planned", "active", "closed"]
    budget: Money
    updated_at: datetime


class Engagement(BaseModel):
    """How engaged one contact is with our campaigns; it feeds the CRM's lead score."""

    email: Email
    score: int = Field(ge=1, le=5, description="the marketing tool's engagement rating, 1 (low) to 5")


customer = DataObject(
    name="customer", model=Customer, owner="team:sales-ops", identity_key="id",
    description="People and companies that buy from us.",
    pii=["email", "first_name", "last_name", "phone"],
    match_keys=["email"],
    max_invalid_share=0.2,  # the CRM is known to hold bad entries; parked, not copied
)
deal = DataObject(
    name="deal", model=Deal, owner="team:sales-ops", identity_key="id",
    description="Sales opportunities; a closed-won deal becomes an invoice.",
    references={"customer_id": "customer"},
)
payment = DataObject(
    name="payment", model=Payment, owner="team:finance", identity_key="id",
    description="Payments received against invoices.",
)
ticket = DataObject(
    name="ticket", model=Ticket, owner="team:support", identity_key="id",
    description="Support requests from customers.", pii=["customer_email"],
    max_invalid_share=0.1,  # a requester's email is kept as typed; tickets with a mistyped one are parked
)
order = DataObject(
    name="order", model=Order, owner="team:ecommerce", identity_key="id",
    description="Orders placed in the web shop.", pii=["customer_email"],
    max_invalid_share=0.1,  # guests check out with missing or mistyped emails; parked, not copied
)
product = DataObject(
    name="product", model=Product, owner="team:operations", identity_key="sku",
    description="The product catalog with prices, mastered in the ERP.",
    max_invalid_share=0.1,  # the old catalogue holds items without a price or with a lower-case status; parked
)
stock_level = DataObject(
    name="stock_level", model=StockLevel, owner="team:operations", identity_key="id",
    description="Units on hand per product and warehouse.",
)
shipment = DataObject(
    name="shipment", model=Shipment, owner="team:operations", identity_key="order_id",
    description="Parcels shipped by the 3PL for orders.",
    # no reference to translate: the 3PL keeps our order id, and the shop is the order's source
)
project = DataObject(
    name="project", model=Project, owner="team:services", identity_key="id",
    description="Client projects the services team runs, with their budget.",
    max_invalid_share=0.15,  # drafts without a name or with a negative budget; parked, not copied
)
engagement = DataObject(
    name="engagement", model=Engagement, owner="team:marketing", identity_key="email",
    description="Each contact's engagement with our campaigns (opens, clicks), driving the lead score.",
    pii=["email"],
)

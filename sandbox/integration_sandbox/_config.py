"""What a sandbox system is started with: its data folder, credentials, seed, faults and webhook receiver."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._faults import Faults

SYSTEMS = ("crm", "billing", "support", "shop", "inventory", "fulfilment", "marketing", "legacy_erp", "projects")
CONFIG_ENV = "INTEGRATIONS_SANDBOX_CONFIG"  # how a system process receives its config (JSON)
DEFAULT_PORTS = {name: 8101 + i for i, name in enumerate(SYSTEMS)}
# The vendor kind each stands in for: a landscape's system of that name and kind gets the stand-in.
KINDS = {"crm": "hubspot", "billing": "stripe", "support": "zendesk", "shop": "shopify", "inventory": "inventory",
         "fulfilment": "fulfilment", "marketing": "mailchimp", "legacy_erp": "sql", "projects": "harvest"}

# Obviously fake development credentials; every one can be overridden.
DEFAULT_TOKENS = {
    "crm": "sandbox-crm-token",
    "billing": "sk_test_sandbox_billing",  # the only key the sandbox billing takes, as Stripe an account's
    "support": "sandbox-support-token",
    "shop": "shpat_sandbox_shop_token",
    "inventory": "sandbox-inventory-token",
    "fulfilment": "sandbox-fulfilment-token",
    "marketing": "sandbox-marketing-key-us1",
    "legacy_erp": "sandbox-legacy-erp-token",
    "projects": "sandbox-projects-api-key",
}
DEFAULT_WEBHOOK_SECRETS = {
    "crm": "sandbox-crm-client-secret",
    "billing": "whsec_sandbox_billing_secret",
    "support": "sandbox-support-webhook-secret",
    "shop": "sandbox-shop-webhook-secret",
    # Standard Webhooks secrets are "whsec_" + base64 of the key bytes.
    "inventory": "whsec_" + base64.b64encode(b"sandbox-inventory-webhook-key").decode(),
    "fulfilment": "whsec_" + base64.b64encode(b"sandbox-fulfilment-webhook-key").decode(),
    "marketing": "sandbox-marketing-webhook-secret",
    "legacy_erp": "sandbox-legacy-erp-unused",
    "projects": "sandbox-projects-unused",
}


class SystemConfig(BaseModel):
    """Everything one sandbox app needs; passed to its builder and, as JSON, to its process."""

    model_config = ConfigDict(extra="forbid")

    system: str
    data_dir: Path
    token: str = Field("", repr=False)
    seed: int = 42
    size: int = Field(50, ge=1, le=1_000_000)
    faults: Faults = Field(default_factory=Faults)
    webhook_url: str | None = None
    webhook_secret: str = Field("", repr=False)
    webhook_duplicate_rate: float = Field(0.05, ge=0, le=1)
    options: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        """Fill unset credentials with the system's development defaults."""
        self.token = self.token or DEFAULT_TOKENS.get(self.system, "sandbox-token")
        self.webhook_secret = self.webhook_secret or DEFAULT_WEBHOOK_SECRETS.get(self.system, "sandbox-secret")

    @property
    def database(self) -> Path:
        """The system's SQLite file."""
        return self.data_dir / f"{self.system}.sqlite"

    @property
    def seed_report(self) -> Path:
        """Where the seed report (which ids carry which quality problem) is written."""
        return self.data_dir / f"{self.system}.seed-report.json"

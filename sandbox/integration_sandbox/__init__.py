"""Local stand-ins for the example business's nine vendor systems, for the demo and the tests.

Each system runs in its own process on 127.0.0.1 with the habits of the vendor it stands for, keeps
its state under a data folder (SQLite; billing: localstripe's pickle), is seeded reproducibly on its
first start (seed number, size 1..1,000,000) with deliberate quality problems listed in
`<data_dir>/<system>.seed-report.json`, injects faults on demand and posts signed webhooks.

    from integration_sandbox import Sandbox

    with Sandbox(tmp_path, systems=["crm", "billing"], ports={"crm": 0, "billing": 0}) as sb:
        httpx.get(sb.url("crm") + "/crm/v3/objects/contacts", params={"properties": "email,phone"},
                  headers={"Authorization": f"Bearer {sb.token('crm')}"})  # HubSpot's defaults without it
        sb.seed_report("crm")["problems"]["invalid_email"]      # ids, as strings

`Sandbox(data_dir, systems=None, ports=None, seed=42, size=50, *, tokens=None, faults=None,
options=None, webhook_url=None, webhook_duplicate_rate=0.05, startup_timeout=120.0, detach=False)`:
`.start()` / `.stop()` or `with`; `.url(system)`, `.port(system)`, `.token(system)`,
`.webhook_secret(system)`, `.seed_report(system)`, `.erp_database_url()`, `.erp_drop_folder()`.
Ports default to `DEFAULT_PORTS` (crm 8101 ... legacy_erp 8108, projects 8109); 0 picks a free port.
`webhook_url` may contain `{system}`, e.g. `http://127.0.0.1:8100/webhooks/{system}`.
`running(data_dir)` lists the live systems started from a folder (by any process, e.g. `integrations
sandbox up`); `Sandbox.attach(data_dir)` gives their URLs and credentials
(read-only); `stop_running(data_dir)` stops them; `reseed(data_dir, systems, seed, size)` regenerates
stopped systems' data. Failures raise `SandboxError` with a one-line message.
`testing.free_port_sandbox(data_dir, systems, **kwargs)` is the same on free ports, for test suites;
`testing.crm_params` / `crm_records` read the CRM with every property its records hold.

| system     | like      | auth                                   | main endpoints                                  | webhooks (scheme)   |
|------------|-----------|----------------------------------------|-------------------------------------------------|---------------------|
| crm        | HubSpot   | Bearer                                 | /crm/v3/objects/{contacts,companies,deals}[/search] | hubspot_v3     |
| billing    | Stripe    | its `sk_` key, Bearer or Basic user    | /v1/... (the real localstripe)                  | stripe              |
| support    | Zendesk   | Basic `email/token:TOKEN` (no Bearer)  | /api/v2/{tickets,users}.json (cursor or capped offset pages), users/show_many, incremental cursor | hmac |
| shop       | Shopify   | X-Shopify-Access-Token (client credentials or shpat_) | POST /admin/api/2026-10/graphql.json, /admin/oauth/access_token | shopify |
| inventory  | warehouse | Bearer                                 | /v1/stock[/{sku}[/adjustments]]                 | standard_webhooks   |
| fulfilment | 3PL       | Bearer                                 | /v1/shipments[/{id}[/cancel]]                   | standard_webhooks   |
| marketing  | Mailchimp | Basic `any:KEY` or Bearer              | /3.0/lists/{id}/members, /3.0/campaigns, reports | hmac               |
| legacy_erp | old ERP   | Bearer (admin face only)               | SQL database + CSV drop folder; /_sandbox/export | none               |
| projects   | Harvest   | X-Api-Key                              | /api/v2/{projects,clients[/{id}]}, Link-header pages | none            |

Every system but billing serves `/_sandbox/health`; every one serves `/_sandbox/faults` (GET, PUT a `Faults` JSON body;
the system's credentials required) to change faults live; `Sandbox(faults={...})` sets them at start.
Every system serves `/_sandbox/requests`: the arrival times (epoch seconds, `arrived`) of the requests
it received outside `/_sandbox/`, to measure a client's request rate where the vendor would; every
system but billing also the method and path of each (`asked`, e.g. `POST
/crm/objects/2026-03/contacts/batch/update`), to count its calls; billing (on `/v1/`) the count it
answered 429.
"""

from ._config import DEFAULT_PORTS, DEFAULT_TOKENS, DEFAULT_WEBHOOK_SECRETS, SYSTEMS, SystemConfig
from ._faults import Faults
from ._runner import RunningSystem, Sandbox, SandboxError, recorded, reseed, running, stop_running

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_TOKENS",
    "DEFAULT_WEBHOOK_SECRETS",
    "SYSTEMS",
    "Faults",
    "RunningSystem",
    "Sandbox",
    "SandboxError",
    "SystemConfig",
    "recorded",
    "reseed",
    "running",
    "stop_running",
]

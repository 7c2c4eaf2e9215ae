"""Hand-written Dagster Definitions that set the metadata contract: a good landscape and broken ones.

They use only dagster and the contract's key names, as any hand-written asset could; docs_gen must
document them like declared ones. `generated(n)` builds a landscape of n systems for the benchmark.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import dagster as dg
from dagster import AssetExecutionContext

from integration_project import contract as c

# Values a leak would show: set in the environment by the secret-scan test, never in metadata.
SECRETS = {
    "CRM_API_TOKEN": "crm-secret-token-4f9d2a61c0",
    "BILLING_API_KEY": "sk_test_51HfixtureSecretKey0042",
    "BILLING_WEBHOOK_SECRET": "whsec_fixtureWebhookSecret99",
    "ERP_DB_PASSWORD": "erp-db-pass-7e1b",
}


@dataclass
class System:
    """A system as the fixture declares it."""

    name: str
    vendor: str
    kind: str
    owners: list[str]
    auth: str = "bearer"
    credentials_env: list[str] = field(default_factory=list)
    base_url: str = "http://127.0.0.1:9000"
    support: dict[str, object] = field(default_factory=dict)  # released, support_ends, ... of the version

    def api(self) -> dict[str, object]:
        """The `integration/api` metadata: env-var names only, never values."""
        return {"vendor": self.vendor, "title": f"{self.vendor} API", "base_url": self.base_url,
                "version": "2024-06-01", "auth": self.auth, "credentials_env": self.credentials_env,
                "docs_url": f"https://docs.example.com/{self.name}", **self.support}


@dataclass
class Flow:
    """A flow of one object from a source system to a consumer system."""

    object: str
    source: str
    consumer: str
    mode: str  # realtime | batch
    role: str = "consumer"
    status: str = "live"

    @property
    def name(self) -> str:
        """The flow's name, as the framework would derive it."""
        return f"{self.object}_{self.source}_to_{self.consumer}"

    @property
    def consumer_key(self) -> list[str]:
        """The consumer asset's key; a write-back gets its own key beside the system's source asset."""
        return [self.consumer, self.object if self.role == "consumer" else f"{self.object}_in"]

    def as_dict(self) -> dict[str, object]:
        """The flow dict of `integration/flows`."""
        trigger = {"cron": "0 2 * * *", "timezone": "Europe/Paris"} if self.mode == "batch" else {
            "events": [f"{self.object}.updated"]}
        return {"name": self.name, "object": self.object, "source": self.source, "consumer": self.consumer,
                "mode": self.mode, "trigger": trigger, "purpose": f"{self.consumer} needs {self.object}",
                "status": self.status}


SCHEMAS = {
    "customer": [("id", "string"), ("email", "string"), ("name", "string"), ("vat_number", "string")],
    "deal": [("id", "string"), ("customer_id", "string"), ("amount", "decimal"), ("stage", "string")],
    "invoice": [("id", "string"), ("customer_id", "string"), ("total", "decimal")],
    "order": [("id", "string"), ("customer_id", "string"), ("lines", "json")],
    "product": [("sku", "string"), ("title", "string"), ("price", "decimal")],
}
PII = {"customer": ["email", "name"]}


def _schema(obj: str) -> dg.TableSchema:
    """A canonical schema for an object (generated objects get a small default one)."""
    cols = SCHEMAS.get(obj, [("id", "string"), ("updated_at", "timestamp"), ("value", "string")])
    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=f"{obj} {n}") for n, t in cols])


def docs_url(key: list[str]) -> str:
    """Where the docs of an asset are published (docs_gen's page layout: assets/<key path>.html)."""
    return "http://127.0.0.1:8000/assets/" + "/".join(key) + ".html"


def _meta(system: str, obj: str, role: str, sot: str, flows: list[Flow], api: dict[str, object] | None,
          **extra: object) -> dict[str, object]:
    """The contract metadata of one asset."""
    modes = sorted({f.mode for f in flows}) or ["batch"]
    meta: dict[str, object] = {
        c.SYSTEM: system, c.OBJECT: obj, c.ROLE: role, c.SOURCE_OF_TRUTH: sot,
        c.FLOWS: dg.MetadataValue.json([f.as_dict() for f in flows]), c.MODE: ",".join(modes),
        c.STATUS: "live", c.PURPOSE: f"{system} keeps {obj}", c.IDENTITY_KEY: "id",
        c.PII: dg.MetadataValue.json(PII.get(obj, [])),
        c.DOCS_URL: docs_url([system, obj]),
        c.DECLARED_IN: f"definitions/systems/{system}.py:12",
        c.VOLUME: dg.MetadataValue.json({"min": 0, "max": 5000}), c.FRESHNESS_MINUTES: 60,
        "dagster/column_schema": _schema(obj),
    }
    if api is not None:
        meta[c.API] = dg.MetadataValue.json(api)
    meta.update(extra)
    return meta


def build(systems: list[System], sot: dict[str, str], flows: list[Flow], live: set[str] | None = None,
          extra_assets: list[object] | None = None, hub_deps: dict[str, list[dg.AssetKey]] | None = None,
          triggers: bool = True) -> dg.Definitions:
    """Definitions of a landscape: per object source -> hub -> consumers, checks, jobs, triggers."""
    by_name = {s.name: s for s in systems}
    live = live if live is not None else set(sot)
    assets: list[object] = []
    checks: list[dg.AssetChecksDefinition] = []
    jobs, schedules, sensors = [], [], []
    for obj, owner in sot.items():
        status = "live" if obj in live else "planned"
        obj_flows = [replace(f, status=status) for f in flows if f.object == obj]
        src = by_name[owner]
        specs = [dg.AssetSpec(
            [owner, obj], group_name=owner, owners=src.owners, kinds={src.kind},
            description=f"{obj.title()} records extracted from {owner}, the source of truth.",
            metadata=_meta(owner, obj, "source", owner, [f for f in obj_flows if f.source == owner], src.api()))]
        specs.append(dg.AssetSpec(
            ["hub", obj], group_name="hub", owners=["team:integration"], kinds={"python"},
            deps=[[owner, obj], *(hub_deps or {}).get(obj, [])],
            description=f"Canonical {obj}, validated and deduplicated.",
            metadata=_meta("hub", obj, "hub", owner, obj_flows, None)))
        for f in obj_flows:
            con = by_name[f.consumer]
            specs.append(dg.AssetSpec(
                f.consumer_key, group_name=f.consumer,
                owners=con.owners, kinds={con.kind}, deps=[["hub", obj]],
                description=f"{obj.title()} loaded into {f.consumer}.",
                metadata=_meta(f.consumer, obj, "consumer", owner, [f], con.api(),
                               **{c.DOCS_URL: docs_url(f.consumer_key), c.MAPPING: dg.MetadataValue.json(
                                   {col.name: f"{f.consumer}_{col.name}" for col in _schema(obj).columns[:2]}),
                                  c.TRIGGER: dg.MetadataValue.json(f.as_dict()["trigger"])})))
        if obj in live:
            assets.append(_executable(obj, specs))
            checks.append(_check(obj))
        else:
            assets.extend(dg.AssetSpec(s.key, **{k: getattr(s, k) for k in (
                "group_name", "owners", "kinds", "description", "deps")},
                metadata={**s.metadata, c.STATUS: "planned", c.STATUS_REASON: "no connector yet"}) for s in specs)
        if not triggers or obj not in live:
            continue
        for f in obj_flows:
            job = dg.define_asset_job(f"sync_{f.name}", selection=[dg.AssetKey(f.consumer_key)],
                                      tags={c.TAG_FLOW: f.name, "dagster/max_retries": "3"})
            jobs.append(job)
            if f.mode == "batch":
                schedules.append(dg.ScheduleDefinition(
                    name=f"{f.name}_nightly", job=job, cron_schedule="0 2 * * *",
                    execution_timezone="Europe/Paris", tags={c.TAG_FLOW: f.name}))
            else:
                sensors.append(_sensor(f, job))
    return dg.Definitions(assets=[*assets, *(extra_assets or [])], asset_checks=checks,
                          jobs=jobs, schedules=schedules, sensors=sensors)


def _executable(obj: str, specs: list[dg.AssetSpec]) -> dg.AssetsDefinition:
    """One multi_asset materializing the whole chain of an object (a live flow)."""

    @dg.multi_asset(name=f"sync_{obj}", specs=specs, can_subset=True)
    def _sync(context: AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        for spec in specs:  # in topological order, as Dagster requires
            if spec.key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=spec.key)

    return _sync


def _check(obj: str) -> dg.AssetChecksDefinition:
    """An asset check on the hub asset of an object."""

    @dg.asset_check(asset=dg.AssetKey(["hub", obj]), name="no_dead_letters",
                    description=f"No {obj} record left in the dead-letter queue.")
    def _no_dead_letters() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    return _no_dead_letters


def _sensor(f: Flow, job: object) -> dg.SensorDefinition:
    """A sensor that turns inbox events into runs of a realtime flow."""

    @dg.sensor(name=f"{f.name}_events", job=job, minimum_interval_seconds=4, tags={c.TAG_FLOW: f.name},
               description=f"New {f.object} events in the inbox start one run per tick.")
    def _events() -> dg.SkipReason:
        return dg.SkipReason("no events")

    return _events


SYSTEMS = [
    System("crm", "HubSpot", "hubspot", ["team:sales-ops"], "bearer", ["CRM_API_TOKEN"]),
    System("billing", "Stripe", "stripe", ["team:finance", "ana@example.com"], "api_key",
           ["BILLING_API_KEY", "BILLING_WEBHOOK_SECRET"]),
    System("shop", "Shopify", "shopify", ["team:ecommerce"], "oauth2", ["SHOP_TOKEN"]),
    System("erp", "LegacyERP", "postgres", ["team:it"], "basic", ["ERP_DB_USER", "ERP_DB_PASSWORD"],
           "http://erp-user:" + SECRETS["ERP_DB_PASSWORD"] + "@127.0.0.1:5432/erp"),
]
SOT = {"customer": "crm", "deal": "crm", "invoice": "billing", "order": "shop", "product": "erp"}
FLOWS = [
    Flow("customer", "crm", "billing", "realtime"),
    Flow("customer", "crm", "shop", "batch"),
    Flow("deal", "crm", "billing", "realtime"),
    Flow("invoice", "billing", "erp", "batch"),
    Flow("order", "shop", "erp", "realtime"),
    Flow("product", "erp", "shop", "batch"),
]


def good() -> dg.Definitions:
    """A small, correct landscape: 4 systems, 5 objects, 6 flows; product is planned, not live."""
    return build(SYSTEMS, SOT, FLOWS, live={"customer", "deal", "invoice", "order"})


defs = good()


def with_system(extra: System, obj: str, consumer: str) -> dg.Definitions:
    """The good landscape plus one system owning one object that one existing system consumes."""
    return build([*SYSTEMS, extra], {**SOT, obj: extra.name},
                 [*FLOWS, Flow(obj, extra.name, consumer, "batch")])


def no_contract() -> dg.Definitions:
    """A hand-written asset with no contract keys, no owner and no description."""
    report = dg.AssetSpec("adhoc_report", deps=[dg.AssetKey(["hub", "customer"])])
    return build(SYSTEMS, SOT, FLOWS, extra_assets=[report])


def stub() -> dg.Definitions:
    """A hub asset depending on an asset nobody declared (Dagster auto-creates a stub)."""
    return build(SYSTEMS, SOT, FLOWS, hub_deps={"invoice": [dg.AssetKey(["ghost", "ledger"])]})


def two_sources() -> dg.Definitions:
    """Customer has a second source of truth: billing also extracts it as a source."""
    rogue = dg.AssetSpec(["billing", "customer_master"], group_name="billing", owners=["team:finance"],
                         description="Billing's own customer master.",
                         metadata=_meta("billing", "customer", "source", "billing", [], None,
                                        **{c.DOCS_URL: docs_url(["billing", "customer_master"])}))
    return build(SYSTEMS, SOT, FLOWS, extra_assets=[rogue])


def wrong_docs_url() -> dg.Definitions:
    """A consumer asset whose docs URL points at another asset's page."""
    copy = dg.AssetSpec(["shop", "customer_copy"], group_name="shop", owners=["team:ecommerce"],
                        description="A copy of customers kept by the shop.",
                        metadata=_meta("shop", "customer", "consumer", "crm", [], None))
    return build(SYSTEMS, SOT, FLOWS, extra_assets=[copy])


def writeback() -> dg.Definitions:
    """Billing writes customers back into crm, their source of truth."""
    return build(SYSTEMS, SOT, [*FLOWS, Flow("customer", "billing", "crm", "batch", role="writeback")])


def realtime_cycle() -> dg.Definitions:
    """Orders ping-pong in real time between billing and erp (neither is the source of truth)."""
    return build(SYSTEMS, SOT, [*FLOWS, Flow("order", "erp", "billing", "realtime", role="writeback"),
                                Flow("order", "billing", "erp", "realtime", role="writeback")])


def unused_system() -> dg.Definitions:
    """A fax system owns memos that nobody consumes, and consumes nothing."""
    fax = System("fax", "Faxolution", "fax", ["team:it"])
    return build([*SYSTEMS, fax], {**SOT, "memo": "fax"}, FLOWS)


def no_source() -> dg.Definitions:
    """A hub asset for leads with no source of truth at all."""
    lead = dg.AssetSpec(["hub", "lead"], group_name="hub", owners=["team:integration"],
                        description="Canonical lead.",
                        metadata={**_meta("hub", "lead", "hub", "", [], None), c.SOURCE_OF_TRUTH: ""})
    return build(SYSTEMS, SOT, FLOWS, extra_assets=[lead])


BROKEN = {
    "no_contract": no_contract, "stub": stub, "two_sources": two_sources, "writeback": writeback,
    "realtime_cycle": realtime_cycle, "unused_system": unused_system, "no_source": no_source,
    "wrong_docs_url": wrong_docs_url,
}


def generated(n: int, seed: int = 7, live_every: int = 0, teams: int = 50) -> dg.Definitions:
    """A landscape of n systems, each owning 2 objects consumed by up to 3 others (benchmark); system
    i is owned by team t(i % teams).

    With live_every=k, every k-th object is live: executable, checked, with a job and a trigger per flow.
    """
    rng = random.Random(seed)
    systems = [System(f"sys{i:04d}", f"Vendor{i % 37}", f"vendor{i % 37}", [f"team:t{i % teams}"],
                      "bearer", [f"SYS{i:04d}_TOKEN"]) for i in range(n)]
    sot = {f"obj{i:04d}_{j}": systems[i].name for i in range(n) for j in range(2)}
    flows = []
    for obj, owner in sot.items():
        others = [s.name for s in systems if s.name != owner]
        for consumer in rng.sample(others, min(len(others), rng.randint(1, 3))):
            flows.append(Flow(obj, owner, consumer, rng.choice(["realtime", "batch"])))
    live = set(list(sot)[::live_every]) if live_every else set()
    return build(systems, sot, flows, live=live)

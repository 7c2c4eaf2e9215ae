"""The metadata contract: the keys the framework writes on Dagster definitions and docs_gen reads.

This module imports nothing, so the docs generator can depend on the key names alone.
docs/metadata.md describes each key.
"""

NS = "integration/"

SYSTEM = "integration/system"  # str: the system an asset belongs to ("hub" for the hub layer)
OBJECT = "integration/object"  # str: the canonical data object (customer, order, ...)
ROLE = "integration/role"  # str: "source" | "hub" | "consumer"
SOURCE_OF_TRUTH = "integration/source_of_truth"  # str: the system that owns the object
FLOWS = "integration/flows"  # table: one row per flow, columns FLOW_FIELDS
MODE = "integration/mode"  # str: "realtime" | "batch" (hub: the modes of its flows, joined by ",")
STATUS = "integration/status"  # str: "live" (a runtime syncs it) | "planned" (declared, not run yet)
STATUS_REASON = "integration/status_reason"  # str or absent: why a planned asset does not run (one sentence)
PURPOSE = "integration/purpose"  # str: one sentence, why this binding exists
API = "integration/api"  # table (field, value): vendor, title, base_url, version, auth, credentials_env, docs_url,
# and the version's published support window: released, support_ends, support_source, support_warning_days
DOCS_URL = "integration/docs_url"  # url: the page of the generated docs for this asset
IDENTITY_KEY = "integration/identity_key"  # str: the canonical field that identifies a record
PII = "integration/pii"  # str: canonical field names holding personal data, joined by ", " (or a json list)
MAPPING = "integration/mapping"  # table (canonical field, system field)
VALUES = "integration/values"  # json or absent: the binding's value map, canonical field -> {ours: the system's or null}
OWNED_FIELDS = "integration/owned_fields"  # json list: fields a consumer owns (field-level SoT)
TRIGGER = "integration/trigger"  # table (trigger, value): cron, timezone, on_change; a source: events
VOLUME = "integration/volume"  # json: {"min", "max"} records per run, or null
FRESHNESS_MINUTES = "integration/freshness_minutes"  # int or null
ON_DELETE = "integration/on_delete"  # str, consumer assets: "delete" | "archive" | "ignore", what a record
# deleted at its source of truth becomes in the consumer
DECLARED_IN = "integration/declared_in"  # str: "path:line" of the declaration
ASSESSMENT = "integration/assessment"  # json or absent: the latest `integrations assess` counts (source assets)

ROLES = ("source", "hub", "consumer")

DAGSTER_URL_ENV = "INTEGRATIONS_DAGSTER_URL"  # env: where the Dagster UI is; the docs link to its pages
MODES = ("realtime", "batch")
# a hub-only leg (an object no live flow consumes) is a flow whose consumer is "hub"
# Short values only, so the UI's rows stay one line: every row of an asset has the asset's OBJECT and
# SOURCE_OF_TRUTH; a flow's purpose and TRIGGER are its consumer asset's, a hub-only leg's its source
# asset's (a cron: a cron expression's spaces wrap a narrow column into tall rows).
FLOW_FIELDS = ("name", "consumer", "mode", "status")
TRIGGER_FIELDS = ("cron", "timezone", "on_change")  # the TRIGGER rows that say when a flow runs

# Keys every asset the framework builds carries; the lint flags assets that lack them.
REQUIRED = (SYSTEM, OBJECT, ROLE, SOURCE_OF_TRUTH, FLOWS, MODE, STATUS)

# Tags on sensors, schedules and jobs (Dagster tags are strings).
TAG_FLOW = "integration/flow"  # the flow(s) a job, schedule or sensor runs (names, comma-separated)
TAG_LANE = "integration/lane"  # job tag: runs of one lane never overlap (the instance queues the second)
TAG_MAINTENANCE = "integration/maintenance"  # a job that keeps the framework's own state (one run at a time)
TAG_SYSTEM = "integration/system"
TAG_OBJECT = "integration/object"
TAG_INBOX = "integration/inbox"  # run tag: "<system>:<first id>:<last id>" of the webhook events it covers,
#   or "<system>:*": every event of the system pending when the run begins to read
TAG_STARTED_BY = "integration/started_by"  # run tag: "webhook" for a run the receiver started
TAG_FILES = "integration/files"  # run tag: the drop-folder files it was started for, comma-separated

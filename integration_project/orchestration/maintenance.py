"""Housekeeping the Definitions carry: the webhook inbox's daily purge of processed events."""

from datetime import timedelta

import dagster as dg

from integration_project import contract as c
from integration_project.model import Landscape
from integration_project.orchestration.resources import HubStore
from integration_project.webhooks.inbox import Inbox

PURGE_CRON = "30 3 * * *"
PURGE_JOB = "webhook_inbox_purge"


def maintenance_definitions(landscape: Landscape) -> dg.Definitions:
    """The inbox purge job and its daily schedule, when any system declares a webhook."""
    retention = {name: timedelta(days=s.webhook.retention_days) for name, s in landscape.systems.items() if s.webhook}
    if not retention:
        return dg.Definitions()
    days = ", ".join(f"{name} {age.days} d" for name, age in sorted(retention.items()))

    @dg.op(description=f"Deletes processed inbox events older than their system's retention ({days}).")
    def purge_webhook_inbox(context: dg.OpExecutionContext, hub_store: HubStore) -> dg.Output[int]:
        inbox = Inbox(hub_store.url)
        try:
            purged = inbox.purge(retention)
        finally:
            inbox.close()
        context.log.info(f"purged {sum(purged.values())} processed events: {purged}")
        return dg.Output(sum(purged.values()), metadata={f"purged/{system}": n for system, n in purged.items()})

    # like every job, it names itself in the flow tag: the instance runs one purge at a time
    @dg.job(name=PURGE_JOB, tags={c.TAG_FLOW: PURGE_JOB},
            description="Keeps the webhook inbox to each system's declared retention.")
    def purge_job() -> None:
        purge_webhook_inbox()

    schedule = dg.ScheduleDefinition(
        name=f"{PURGE_JOB}_schedule", job=purge_job, cron_schedule=PURGE_CRON, tags={c.TAG_FLOW: PURGE_JOB},
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Daily purge of processed webhook events past their retention; unprocessed ones stay.")
    return dg.Definitions(jobs=[purge_job], schedules=[schedule])

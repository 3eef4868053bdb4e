"""The webhook sender: delivers due callbacks from the outbox on every tick.

It runs as a sensor because the daemon is the process that is always on beside the API,
and its tick log is where the Dagster UI shows each delivery attempt.
"""

import dagster as dg

from char_pipeline.resources.jobs import JobStoreResource
from char_pipeline.settings import get_settings
from char_pipeline.webhooks import WebhookSender, parse_allowlist, parse_schedule

# Per tick: at most this many deliveries, sent 16 at a time with a 15 s timeout each, so a
# tick ends well inside the daemon's 60 s budget even when every receiver hangs.
DELIVERIES_PER_TICK = 64


@dg.sensor(
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Delivers due job callbacks (Standard Webhooks, signed, retried with backoff).",
)
def webhook_delivery_sensor(
    context: dg.SensorEvaluationContext, jobs: JobStoreResource
) -> dg.SensorResult:
    settings = get_settings()
    sender = WebhookSender(
        jobs.store,
        allow=parse_allowlist(settings.outbound_allow),
        schedule=parse_schedule(settings.webhook_retry_schedule),
    )
    try:
        outcomes = sender.deliver_due(DELIVERIES_PER_TICK, log=context.log.info)
    finally:
        sender.close()
    if not outcomes:
        return dg.SensorResult(skip_reason="No callbacks due.")
    delivered = sum(o["outcome"] == "delivered" for o in outcomes)
    return dg.SensorResult(skip_reason=f"{len(outcomes)} attempts, {delivered} delivered.")

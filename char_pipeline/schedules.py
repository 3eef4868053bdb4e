"""Scheduled backfills: re-render partitions whose video is missing or whose last run failed.

Off by default; set ``CHAR_BACKFILL_CRON`` (e.g. ``0 3 * * *``) to turn it on. The schedule is
always listed in the UI, with its next tick once it runs.
"""

import dagster as dg

from char_pipeline.assets.jobs import render_job
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.settings import get_settings

DEFAULT_CRON = "0 3 * * *"
BACKFILL_RUN_CONFIG = {
    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
}


@dg.schedule(
    job=render_job,
    cron_schedule=get_settings().backfill_cron or DEFAULT_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING
    if get_settings().backfill_cron
    else dg.DefaultScheduleStatus.STOPPED,
    description="Backfills reference partitions whose video is missing or failed (CHAR_BACKFILL_CRON).",
)
def backfill_schedule(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | list[dg.RunRequest]:
    keys = context.instance.get_dynamic_partitions(reference_partitions.name)
    if not keys:
        return dg.SkipReason("No reference partitions yet.")
    statuses = context.instance.get_status_by_partition(
        dg.AssetKey("video"), keys, reference_partitions
    )
    tick = (
        context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
        if context.scheduled_execution_time
        else "manual"
    )
    wanted = [key for key in keys if statuses.get(key) in (None, dg.AssetPartitionStatus.FAILED)]
    if not wanted:
        return dg.SkipReason(f"All {len(keys)} partitions have a video.")
    return [
        dg.RunRequest(
            run_key=f"backfill:{tick}:{key}",
            partition_key=key,
            run_config=BACKFILL_RUN_CONFIG,
            tags={"char/source": "backfill"},
        )
        for key in wanted
    ]

"""Celery workers of the distributed profile: they run batch steps the Celery executor queues.

One queue per compute type (cpu, t4, v100, a100): a batch run's chunk steps carry their
type's queue tag (assets/batch.py), so `char-pipeline worker --queue t4` renders only t4
work. The executor (in each run process) and the workers build the same Celery
configuration from settings here.
"""

from __future__ import annotations

from char_pipeline.settings import Settings

# Steps without a compute type (a batch's planning, a few milliseconds) go to dagster-celery's
# own queue, which every worker also takes, so a fleet of only t4 workers still plans.
DEFAULT_QUEUE = "dagster"


# Celery settings shared by the executor and the workers. acks_late + reject_on_worker_lost:
# a step's message is acknowledged only when the step is done, so the broker hands the step of
# a worker that died (kill -9, machine lost) to another worker. Prefetch 1: a worker holds one
# step at a time, none waiting behind it.
CELERY_SETTINGS = {
    "task_default_queue": DEFAULT_QUEUE,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}


def executor_config(settings: Settings) -> dict:
    """The celery_executor's config for the settings (definitions.py); the workers' app is
    built from the same (workers/app.py)."""
    return {
        "broker": settings.celery_broker_url,
        "backend": settings.celery_backend_url,
        "config_source": dict(CELERY_SETTINGS),
    }

"""The one Definitions object Dagster loads (workspace.yaml points here)."""

import dagster as dg

from char_pipeline.assets.batch import batch_render_job
from char_pipeline.assets.jobs import (
    nerf_request_job,
    reference_job,
    render_job,
    render_request_job,
)
from char_pipeline.assets.nerf import nerf_model, nerf_video
from char_pipeline.assets.references import identity_features, reference_image, subject_mask
from char_pipeline.assets.rendering import control_sequences, frames, video
from char_pipeline.engine.generators.store import use_model_store
from char_pipeline.engine.identity import use_onnx_cache
from char_pipeline.resources.compute import ComputeFleet
from char_pipeline.resources.jobs import JobStoreResource
from char_pipeline.resources.storage import JsonRecordIOManager
from char_pipeline.schedules import backfill_schedule
from char_pipeline.sensors.jobs import (
    job_cancel_sensor,
    job_failure_sensor,
    job_reconciler_sensor,
    job_submission_sensor,
)
from char_pipeline.sensors.manifests import manifest_results_sensor, manifest_sensor
from char_pipeline.sensors.references import reference_prune_sensor, reference_upload_sensor
from char_pipeline.sensors.webhooks import webhook_delivery_sensor
from char_pipeline.settings import Settings, get_settings
from char_pipeline.storage import build_store


def build_resources(settings: Settings) -> dict:
    """Storage and compute chosen in one place, from settings."""
    use_onnx_cache(settings.model_cache_dir)  # render runs measure identity without torch
    use_model_store(settings.models_root)  # the generative modes' weights
    return {
        "store": build_store(settings),  # a plain object; Dagster wraps it
        "io_manager": JsonRecordIOManager(
            root_url=settings.artifacts_root, s3_endpoint_url=settings.s3_endpoint_url
        ),
        "jobs": JobStoreResource(url=settings.resolved_job_store_url),
        "compute": ComputeFleet.build(
            renderer=settings.renderer,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            allow_cpu_generation=settings.allow_cpu_generation,
            generator_aliases=settings.generator_aliases,
            models_dir=str(settings.models_root),
        ),
    }


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of jobs that do not pin their own (the batch job): in process by
    default, Celery workers per compute type in the distributed profile (docs/scaling.md).
    Dagster imports dagster_celery only for the latter."""
    if settings.resolved_executor == "celery":
        from dagster_celery import celery_executor

        from char_pipeline.workers import executor_config

        return celery_executor.configured(executor_config(settings), name="celery")
    return dg.in_process_executor


ASSETS = [
    reference_image,
    subject_mask,
    identity_features,
    control_sequences,
    frames,
    video,
    nerf_model,
    nerf_video,
]


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=[render_job, reference_job, render_request_job, nerf_request_job, batch_render_job],
        sensors=[
            reference_upload_sensor,
            reference_prune_sensor,
            job_submission_sensor,
            job_failure_sensor,
            job_cancel_sensor,
            job_reconciler_sensor,
            webhook_delivery_sensor,
            manifest_sensor,
            manifest_results_sensor,
        ],
        schedules=[backfill_schedule],
        resources=build_resources(settings),
        executor=build_executor(settings),
    )


defs = build_definitions(get_settings())

"""Batches: many independent videos; one bad task does not sink the batch.

Small batches render now (every task's result or error, in order); others become one job per
task plus a batch job that aggregates them. Tasks that share size, rate and format render in
one Dagster run, across references.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.renders import Renders
from char_pipeline.services.requests import BatchIn, BatchTask

SYNC_BATCH_FACTOR = 4  # a sync batch renders at most this many sync-sized videos' frames


def task_error(exc: CharPipelineError) -> dict:
    return {
        "code": exc.code,
        "message": exc.message,
        "details": {k: str(v) for k, v in exc.details.items()},
    }


@dataclass
class BatchPlan:
    """Each task with its plan (z sequence, mask record, ETag) or its error; the batch ETag."""

    tasks: list[tuple[int, BatchTask, tuple | dict]]
    etag: str
    gpu: str

    @property
    def planned(self) -> list[tuple[int, BatchTask, tuple]]:
        return [entry for entry in self.tasks if isinstance(entry[2], tuple)]

    def runs_now(self, body: BatchIn, sync_max_frames: int) -> bool:
        frames = [len(plan[0]) for _, _, plan in self.planned]
        return (
            not body.async_
            and all(f <= sync_max_frames for f in frames)
            and sum(frames) <= SYNC_BATCH_FACTOR * sync_max_frames
        )


def plan(ctx: ServiceContext, body: BatchIn, gpu: str) -> BatchPlan:
    renders = Renders(ctx)
    tasks: list[tuple[int, BatchTask, tuple | dict]] = []
    for index, task in enumerate(body.tasks):
        task.callback_url = task.callback_url or body.callback_url
        try:
            renders.check_callback(task.callback_url)
            tasks.append((index, task, renders.video_plan(task, gpu)))
        except CharPipelineError as exc:
            tasks.append((index, task, {"error": task_error(exc)}))
    joined = "|".join(p[2] if isinstance(p, tuple) else "x" for _, _, p in tasks)
    return BatchPlan(tasks, "b" + hashlib.sha256(joined.encode()).hexdigest()[:40], gpu)


def render_now(ctx: ServiceContext, batch: BatchPlan, cache_ttl: int | None) -> list[dict]:
    """Every task's result or error, in order."""
    renders = Renders(ctx)
    results = []
    for index, task, task_plan in batch.tasks:
        if isinstance(task_plan, dict):
            results.append(
                {"task_index": index, "reference_image_id": task.reference_image_id, **task_plan}
            )
            continue
        z_sequence, mask_record, task_etag = task_plan
        try:
            result = renders.render_video(
                task, z_sequence, mask_record, task_etag, cache_ttl, batch.gpu
            )
            results.append({"task_index": index, **result})
        except CharPipelineError as exc:
            results.append(
                {
                    "task_index": index,
                    "reference_image_id": task.reference_image_id,
                    "error": task_error(exc),
                }
            )
    return results


def submit(
    ctx: ServiceContext,
    batch: BatchPlan,
    body: BatchIn,
    count: int,
    key_id: str,
    cache_ttl: int | None,
) -> tuple[str, list[dict]]:
    """One job per planned task and the batch job over them: (batch id, task entries)."""
    renders = Renders(ctx)
    batch_id = "job_" + secrets.token_hex(8)
    tasks: list[dict] = []
    specs, ttls, positions = [], [], []
    for index, task, task_plan in batch.tasks:
        if isinstance(task_plan, dict):
            tasks.append(
                {
                    "task_index": index,
                    "reference_image_id": task.reference_image_id,
                    "status": "failed",
                    **task_plan,
                }
            )
            continue
        z_sequence, _, task_etag = task_plan
        # Tasks that share size, rate and format render in one run (across references).
        group = f"{batch_id}:{task.resolution}:{task.fps}:{task.format}"
        spec = renders.job_spec(
            task, z_sequence, task_etag, batch.gpu, count, key_id, cache_ttl, group
        )
        specs.append({**spec, "batch_id": batch_id})
        ttls.append(task.url_ttl)
        positions.append(len(tasks))
        tasks.append({"task_index": index})
    for position, job in zip(
        positions, renders.create_jobs(specs, ttls) if specs else [], strict=True
    ):
        tasks[position].update(
            job_id=job.id, status_url=f"{ctx.settings.base_url}/v1/jobs/{job.id}"
        )
    ctx.jobs.create_job(
        kind="batch",
        reference_image_id=body.tasks[0].reference_image_id,
        request={"tasks": tasks},
        api_key_id=key_id,
        account_id=ctx.account,
        gpu_type=batch.gpu,
        instance_count=count,
        job_id=batch_id,
    )
    return batch_id, tasks

"""Jobs as their owner sees them: one view per job, batches aggregated from their tasks."""

from __future__ import annotations

from char_pipeline import jobstate
from char_pipeline.engine.errors import NotFoundError
from char_pipeline.jobstore import Job
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.renders import Renders


def view(ctx: ServiceContext, job_id: str, api_key_id: str) -> dict:
    """The job's view for its key; another key's job is missing, not forbidden (ids are
    not to be probed)."""
    job = ctx.jobs.get_job(job_id)
    if job is None or (job.api_key_id is not None and job.api_key_id != api_key_id):
        raise NotFoundError(f"Job {job_id!r} not found.", job_id=job_id)
    return batch_view(ctx, job) if job.kind == "batch" else job_view(ctx, job)


def batch_view(ctx: ServiceContext, batch: Job) -> dict:
    """A batch's status, aggregated from its tasks' jobs."""
    tasks, statuses, progress = [], [], []
    for task in batch.request["tasks"]:
        if "job_id" not in task:
            tasks.append(task)
            statuses.append("failed")
            progress.append(100.0)
            continue
        job = ctx.jobs.get_job(task["job_id"])
        view = job_view(ctx, job)
        tasks.append({"task_index": task["task_index"], **view})
        statuses.append(job.status)
        progress.append(job.progress if jobstate.is_open(job.status) else 100.0)
    status = str(jobstate.aggregate(statuses))
    return {
        "job_id": batch.id,
        "kind": "batch",
        "status": status,
        "progress": round(sum(progress) / len(progress), 1),
        "message": f"{statuses.count('completed')} of {len(statuses)} tasks completed, {statuses.count('failed')} failed",
        "created_at": batch.created_at,
        "updated_at": batch.updated_at,
        "tasks": tasks,
    }


def job_view(ctx: ServiceContext, job: Job) -> dict:
    view = {
        "job_id": job.id,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
    if job.status == "completed" and job.result:
        view["result"] = Renders(ctx).present(job.result, job.request.get("url_ttl"))
    if job.status == "failed":
        view["error"] = job.error
    if job.callback_url:
        view["callback_url"] = job.callback_url
        view["deliveries"] = ctx.jobs.deliveries_for_job(job.id)
    if job.attempts > 1:
        view["attempts"] = job.attempts
    return view

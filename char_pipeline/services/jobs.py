"""Jobs as their account sees them: one view per job (batches aggregated from their tasks),
listings, cancelling, and waiting for a change."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime

from char_pipeline import jobstate
from char_pipeline.engine.errors import BadRequestError, ConflictError, NotFoundError
from char_pipeline.jobstore import Job
from char_pipeline.jobstore.jobs import JobFilter
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.renders import Renders

LIST_LIMIT_MAX = 100
WAIT_SECONDS_MAX = 60.0
WAIT_POLL_SECONDS = 0.2  # a status change is answered within this (a read of one row)


def owned(ctx: ServiceContext, job_id: str) -> Job:
    """The job if the caller's account may see it; another account's job is missing, not
    forbidden (ids are not to be probed)."""
    job = ctx.jobs.get_job(job_id)
    if job is None or not ctx.may_see(job.account_id):
        raise NotFoundError(f"Job {job_id!r} not found.", job_id=job_id)
    return job


def view(ctx: ServiceContext, job_id: str) -> dict:
    return present(ctx, owned(ctx, job_id))


def present(ctx: ServiceContext, job: Job) -> dict:
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
    counts = ", ".join(
        f"{statuses.count(word)} {word}"
        for word in ("failed", "cancelled")
        if word == "failed" or statuses.count(word)
    )
    return {
        "job_id": batch.id,
        "kind": "batch",
        "status": status,
        "progress": round(sum(progress) / len(progress), 1),
        "message": f"{statuses.count('completed')} of {len(statuses)} tasks completed, {counts}",
        "created_at": batch.created_at,
        "updated_at": batch.updated_at,
        "tasks": tasks,
    }


def job_view(ctx: ServiceContext, job: Job) -> dict:
    view = {
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "reference_image_id": job.reference_image_id,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
    if job.batch_id:
        view["batch_id"] = job.batch_id
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


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def _seq_from(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(
            "Invalid cursor: pass next_cursor from a previous page as it came.", field="cursor"
        ) from exc


def listing(
    ctx: ServiceContext,
    *,
    status: str | None = None,
    kind: str | None = None,
    batch_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> dict:
    """The account's jobs, newest first, one page: {data, has_more, next_cursor}."""
    if ctx.account is None:
        raise BadRequestError("Listing jobs needs an account.")
    where = JobFilter(status, kind, batch_id, created_after, created_before)
    before = _seq_from(cursor) if cursor else None
    rows = ctx.jobs.list_jobs(ctx.account, where, before_seq=before, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return {
        "data": [present(ctx, job) for job in page],
        "has_more": more,
        "next_cursor": _cursor(page[-1].seq) if more else None,
    }


def cancel(ctx: ServiceContext, job_id: str) -> dict:
    """Cancel an open job (each open task of a batch); the run stops at the cancel sensor,
    the callback fires with ``cancelled``. Cancelling a cancelled job answers it again;
    one that completed or failed is a conflict."""
    job = owned(ctx, job_id)
    targets = (
        [ctx.jobs.get_job(task["job_id"]) for task in job.request["tasks"] if "job_id" in task]
        if job.kind == "batch"
        else [job]
    )
    open_targets = [target for target in targets if jobstate.is_open(target.status)]
    for target in open_targets:
        payload = {
            "job_id": target.id,
            "status": str(jobstate.JobStatus.CANCELLED),
            "message": "Cancelled by its owner.",
        }
        ctx.jobs.cancel_job(target.id, payload)  # False: it ended meanwhile (judged below)
    current = present(ctx, owned(ctx, job_id))
    if job.kind == "batch":
        if not open_targets and current["status"] != "cancelled":
            raise ConflictError(
                f"Batch {job_id} has no open tasks left to cancel ({current['message']}).",
                job_id=job_id,
                status=current["status"],
            )
        return current
    if current["status"] != "cancelled":
        raise ConflictError(
            f"Job {job_id} already {current['status']}; only a pending or processing job can be cancelled.",
            job_id=job_id,
            status=current["status"],
        )
    return current


async def wait_for_change(ctx: ServiceContext, job_id: str, seconds: float) -> dict:
    """The job's view once its status differs from now (at once if it has ended), or after
    ``seconds`` as it is then: a long poll, one request instead of one a second. Each check
    is one row read (a batch's: its tasks'); the view is built once, for the answer."""
    first = _status(ctx, owned(ctx, job_id))
    if first not in [str(s) for s in jobstate.OPEN]:
        return view(ctx, job_id)
    deadline = time.monotonic() + min(seconds, WAIT_SECONDS_MAX)
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(WAIT_POLL_SECONDS, left))
        if _status(ctx, owned(ctx, job_id)) != first:
            break
    return view(ctx, job_id)


def _status(ctx: ServiceContext, job: Job) -> str:
    if job.kind != "batch":
        return job.status
    statuses = [
        ctx.jobs.get_job(task["job_id"]).status if "job_id" in task else "failed"
        for task in job.request["tasks"]
    ]
    return str(jobstate.aggregate(statuses))

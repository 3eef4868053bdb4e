"""Jobs: read one (optionally waiting for its status to change), list, cancel.

Reads count against their own rate-limit bucket (``rate_limit_job_reads``), so a client
polling its jobs never spends the budget its submissions need.
"""

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query

from char_pipeline.api.deps import JOB_READS, AppState, account_state
from char_pipeline.api.openapi import errors
from char_pipeline.api.schemas import BatchOut, JobList, JobOut
from char_pipeline.services import jobs

router = APIRouter(prefix="/v1/jobs", tags=["Jobs"])
READER = Depends(account_state("generate:write", JOB_READS))
WRITER = Depends(account_state("generate:write"))


@router.get(
    "",
    summary="List Jobs",
    responses=errors(400),
    response_model=JobList,
    response_model_exclude_unset=True,
)
def list_jobs(
    status: Literal["pending", "processing", "completed", "failed", "cancelled"] | None = None,
    kind: Literal["video", "nerf", "batch"] | None = None,
    batch_id: str | None = Query(None, max_length=40, description="Only the tasks of this batch."),
    created_after: datetime | None = Query(None, description="ISO 8601, exclusive."),
    created_before: datetime | None = Query(None, description="ISO 8601, exclusive."),
    cursor: str | None = Query(
        None, max_length=40, description="next_cursor of the previous page."
    ),
    limit: int = Query(20, ge=1, le=jobs.LIST_LIMIT_MAX),
    state: AppState = READER,
) -> dict:
    """The account's jobs, newest first, a page at a time."""
    return jobs.listing(
        state,
        status=status,
        kind=kind,
        batch_id=batch_id,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/{job_id}",
    summary="Get Job Status",
    responses=errors(404),
    response_model=JobOut | BatchOut,
    response_model_exclude_unset=True,  # exactly the fields the job has, nulls included
)
async def get_job(
    job_id: str,
    wait: float | None = Query(
        None,
        ge=0,
        le=jobs.WAIT_SECONDS_MAX,
        description="Long poll: answer when the status changes, or after this many seconds (at most 60).",
    ),
    state: AppState = READER,
) -> dict:
    if wait:
        return await jobs.wait_for_change(state, job_id, wait)
    return jobs.view(state, job_id)


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a Job",
    responses=errors(404, 409),
    response_model=JobOut | BatchOut,
    response_model_exclude_unset=True,
)
def cancel_job(job_id: str, state: AppState = WRITER) -> dict:
    """Stops a pending or processing job (every open task of a batch): its run is terminated
    and its callback fires with status ``cancelled``. Cancelling again answers the same; a job
    that already completed or failed answers 409."""
    return jobs.cancel(state, job_id)

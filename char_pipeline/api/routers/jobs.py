from fastapi import APIRouter, Depends

from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.errors import ApiError
from char_pipeline.jobstore import ApiKey
from char_pipeline.services.renders import Renders

router = APIRouter(prefix="/v1/jobs", tags=["Jobs"])
GENERATE = require_scope("generate:write")


@router.get("/{job_id}", summary="Get Job Status")
async def get_job(
    job_id: str,
    key: ApiKey = Depends(GENERATE),
    state: AppState = Depends(app_state),
) -> dict:
    job = state.jobs.get_job(job_id)
    # Another key's job is reported as missing, not forbidden: ids are not to be probed.
    if job is None or (job.api_key_id is not None and job.api_key_id != key.id):
        raise ApiError(404, f"Job {job_id!r} not found.", details={"job_id": job_id})
    renders = Renders(state)
    return renders.batch_view(job) if job.kind == "batch" else renders.job_view(job)

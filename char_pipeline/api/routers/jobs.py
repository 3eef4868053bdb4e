from fastapi import APIRouter, Depends

from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.schemas import BatchOut, JobOut
from char_pipeline.jobstore import ApiKey
from char_pipeline.services import jobs

router = APIRouter(prefix="/v1/jobs", tags=["Jobs"])
GENERATE = require_scope("generate:write")


@router.get(
    "/{job_id}",
    summary="Get Job Status",
    response_model=JobOut | BatchOut,
    response_model_exclude_unset=True,  # exactly the fields the job has, nulls included
)
async def get_job(
    job_id: str,
    key: ApiKey = Depends(GENERATE),
    state: AppState = Depends(app_state),
) -> dict:
    return jobs.view(state, job_id, key.id)

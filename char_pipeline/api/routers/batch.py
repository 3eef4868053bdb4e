"""POST /v1/batch/video: many independent videos; one bad task does not sink the batch."""

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from char_pipeline.api.body_limits import json_body, request_body_schema
from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.idempotency import Idempotency
from char_pipeline.api.schemas import BatchIn
from char_pipeline.jobstore import ApiKey
from char_pipeline.services import batches
from char_pipeline.services.compute import etag_matches, gpu_settings

router = APIRouter(prefix="/v1/batch", tags=["Batch Processing"])
WRITE = require_scope("generate:write")
BATCH_BODY = json_body(BatchIn)  # parsed off the event loop


@router.post(
    "/video",
    summary="Batch Video Generation (Asynchronous or Synchronous)",
    responses={
        202: {"description": "Accepted: one job per task"},
        304: {"description": "Not modified"},
    },
    openapi_extra=request_body_schema(BatchIn),
)
def batch_video(
    request: Request,
    body: BatchIn = Depends(BATCH_BODY),
    custom_cache_duration_seconds: int | None = Query(None, ge=1),
    x_gpu_type: str | None = Header(None),
    x_instance_count: str | None = Header(None),
    if_none_match: str | None = Header(None),
    key: ApiKey = Depends(WRITE),
    state: AppState = Depends(app_state),
) -> Response:
    def handle() -> Response:
        gpu, count = gpu_settings(x_gpu_type, x_instance_count)
        plan = batches.plan(state, body, gpu)
        headers = {"ETag": f'"{plan.etag}"'}
        if etag_matches(if_none_match, f'"{plan.etag}"'):
            return Response(status_code=304, headers=headers)
        if plan.runs_now(body, state.settings.sync_max_frames):
            results = batches.render_now(state, plan, custom_cache_duration_seconds)
            return JSONResponse({"results": results}, headers=headers)
        batch_id, tasks = batches.submit(
            state, plan, body, count, key.id, custom_cache_duration_seconds
        )
        location = f"/v1/jobs/{batch_id}"
        return JSONResponse(
            {
                "batch_id": batch_id,
                "job_id": batch_id,
                "status_url": f"{state.settings.base_url}{location}",
                "tasks": tasks,
            },
            status_code=202,
            headers={**headers, "Location": location},
        )

    return Idempotency(state, key.id, request, body).run(handle)

"""POST /v1/batch/video: many independent videos; one bad task does not sink the batch."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from char_pipeline.api.body_limits import json_body, request_body_schema
from char_pipeline.api.openapi import errors
from char_pipeline.api.plumbing import ComputeHeaders, IfNoneMatch, Once, accepted
from char_pipeline.api.schemas import BatchAccepted, BatchIn, BatchResults
from char_pipeline.services import batches

router = APIRouter(prefix="/v1/batch", tags=["Batch Processing"])
BATCH_BODY = json_body(BatchIn)  # parsed off the event loop
CacheSeconds = Annotated[int | None, Query(ge=1, alias="custom_cache_duration_seconds")]


@router.post(
    "/video",
    summary="Batch Video Generation (Asynchronous or Synchronous)",
    responses={
        200: {"model": BatchResults, "description": "Rendered now: each task's result or error"},
        202: {"model": BatchAccepted, "description": "Accepted: one job per task"},
        304: {"description": "Not modified"},
        **errors(409),
    },
    openapi_extra=request_body_schema(BatchIn),
)
def batch_video(
    compute: ComputeHeaders,
    conditional: IfNoneMatch,
    once: Once,
    body: BatchIn = Depends(BATCH_BODY),
    cache_seconds: CacheSeconds = None,
) -> Response:
    def handle() -> Response:
        state = once.state
        plan = batches.plan(state, body, compute.gpu)
        if (not_modified := conditional.not_modified(plan.etag)) is not None:
            return not_modified
        headers = {"ETag": f'"{plan.etag}"'}
        if plan.runs_now(body, state.settings.sync_max_frames):
            results = batches.render_now(state, plan, cache_seconds)
            return JSONResponse({"results": results}, headers=headers)
        batch_id, tasks = batches.submit(
            state, plan, body, compute.count, once.key.id, cache_seconds
        )
        return accepted(state, batch_id, headers, batch_id=batch_id, tasks=tasks)

    return once.run(body, handle)

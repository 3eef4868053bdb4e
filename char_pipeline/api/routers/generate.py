from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from char_pipeline.api.body_limits import json_body, request_body_schema
from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.idempotency import Idempotency
from char_pipeline.api.schemas import FrameIn, JobAccepted, NerfIn, VideoIn
from char_pipeline.jobstore import ApiKey
from char_pipeline.services.compute import etag_matches, gpu_settings
from char_pipeline.services.nerfs import Nerfs
from char_pipeline.services.renders import Renders

router = APIRouter(prefix="/v1/generate", tags=["Frame Generation"])


def accepted(state: AppState, job_id: str, headers: dict[str, str]) -> JSONResponse:
    """202 for an async job: its id, status URL and Location (the seed's §9.1)."""
    location = f"/v1/jobs/{job_id}"
    return JSONResponse(
        {"job_id": job_id, "status_url": f"{state.settings.base_url}{location}"},
        status_code=202,
        headers={**headers, "Location": location},
    )


WRITE = require_scope("generate:write")
VIDEO_BODY = json_body(VideoIn)  # parsed off the event loop


@router.post(
    "/frame", summary="Generate a Single Frame", responses={304: {"description": "Not modified"}}
)
def generate_frame(
    request: Request,
    body: FrameIn,
    custom_cache_duration_seconds: int | None = Query(None, ge=1),
    x_gpu_type: str | None = Header(None),
    x_instance_count: str | None = Header(None),
    if_none_match: str | None = Header(None),
    key: ApiKey = Depends(WRITE),
    state: AppState = Depends(app_state),
) -> Response:
    def handle() -> Response:
        gpu, _ = gpu_settings(x_gpu_type, x_instance_count)
        renders = Renders(state)
        mask_record, etag = renders.frame(body, gpu)
        headers = {"ETag": f'"{etag}"'}
        if etag_matches(if_none_match, f'"{etag}"'):
            return Response(status_code=304, headers=headers)
        result = renders.render_frame(body, mask_record, etag, custom_cache_duration_seconds)
        return JSONResponse(result, headers=headers)

    return Idempotency(state, key.id, request, body).run(handle)


@router.post(
    "/video",
    summary="Generate a Multi-Frame Video",
    responses={
        202: {"model": JobAccepted, "description": "Accepted: an async job"},
        304: {"description": "Not modified"},
    },
    openapi_extra=request_body_schema(VideoIn),
)
def generate_video(
    request: Request,
    body: VideoIn = Depends(VIDEO_BODY),
    custom_cache_duration_seconds: int | None = Query(None, ge=1),
    x_gpu_type: str | None = Header(None),
    x_instance_count: str | None = Header(None),
    if_none_match: str | None = Header(None),
    key: ApiKey = Depends(WRITE),
    state: AppState = Depends(app_state),
) -> Response:
    def handle() -> Response:
        gpu, count = gpu_settings(x_gpu_type, x_instance_count)
        renders = Renders(state)
        renders.check_callback(body.callback_url)
        z_sequence, mask_record, etag = renders.video_plan(body, gpu)
        headers = {"ETag": f'"{etag}"'}
        if etag_matches(if_none_match, f'"{etag}"'):
            return Response(status_code=304, headers=headers)
        if body.async_ or len(z_sequence) > state.settings.sync_max_frames:
            job = renders.submit_video(
                body, z_sequence, etag, gpu, count, key.id, custom_cache_duration_seconds
            )
            return accepted(state, job.id, headers)
        result = renders.render_video(
            body, z_sequence, mask_record, etag, custom_cache_duration_seconds
        )
        return JSONResponse(result, headers=headers)

    return Idempotency(state, key.id, request, body).run(handle)


@router.post(
    "/nerf",
    summary="Generate NeRF Model or Video",
    responses={
        202: {"model": JobAccepted, "description": "Accepted: an async job"},
        304: {"description": "Not modified"},
    },
)
def generate_nerf(
    request: Request,
    body: NerfIn,
    custom_cache_duration_seconds: int | None = Query(None, ge=1),
    x_gpu_type: str | None = Header(None),
    x_instance_count: str | None = Header(None),
    if_none_match: str | None = Header(None),
    key: ApiKey = Depends(WRITE),
    state: AppState = Depends(app_state),
) -> Response:
    def handle() -> Response:
        gpu, count = gpu_settings(x_gpu_type, x_instance_count)
        nerfs = Nerfs(state)
        nerfs.renders.check_callback(body.callback_url)
        cameras, size, mask_record, etag = nerfs.plan(body, gpu)
        headers = {"ETag": f'"{etag}"'}
        if etag_matches(if_none_match, f'"{etag}"'):
            return Response(status_code=304, headers=headers)
        if nerfs.should_queue(body, cameras, size):
            job = nerfs.submit(
                body, cameras, mask_record, etag, gpu, count, key.id, custom_cache_duration_seconds
            )
            return accepted(state, job.id, headers)
        result = nerfs.render(body, cameras, size, mask_record, etag, custom_cache_duration_seconds)
        return JSONResponse(result, headers=headers)

    return Idempotency(state, key.id, request, body).run(handle)

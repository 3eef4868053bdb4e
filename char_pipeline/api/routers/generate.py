from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from char_pipeline.api.body_limits import json_body, request_body_schema
from char_pipeline.api.openapi import errors
from char_pipeline.api.plumbing import ComputeHeaders, IfNoneMatch, Once, accepted
from char_pipeline.api.schemas import (
    FrameIn,
    FrameOut,
    JobAccepted,
    NerfIn,
    NerfOut,
    VideoIn,
    VideoOut,
)
from char_pipeline.services.nerfs import Nerfs
from char_pipeline.services.renders import Renders

router = APIRouter(prefix="/v1/generate", tags=["Frame Generation"])


VIDEO_BODY = json_body(VideoIn)  # parsed off the event loop
CacheSeconds = Annotated[int | None, Query(ge=1, alias="custom_cache_duration_seconds")]


@router.post(
    "/frame",
    summary="Generate a Single Frame",
    responses={200: {"model": FrameOut}, 304: {"description": "Not modified"}, **errors(404, 409)},
)
def generate_frame(
    body: FrameIn,
    compute: ComputeHeaders,
    conditional: IfNoneMatch,
    once: Once,
    cache_seconds: CacheSeconds = None,
) -> Response:
    def handle() -> Response:
        renders = Renders(once.state)
        mask_record, etag = renders.frame(body, compute.gpu)
        if (not_modified := conditional.not_modified(etag)) is not None:
            return not_modified
        result = renders.render_frame(body, mask_record, etag, cache_seconds, compute.gpu)
        return JSONResponse(result, headers={"ETag": f'"{etag}"'})

    return once.run(body, handle)


@router.post(
    "/video",
    summary="Generate a Multi-Frame Video",
    responses={
        200: {"model": VideoOut},
        202: {"model": JobAccepted, "description": "Accepted: an async job"},
        304: {"description": "Not modified"},
        **errors(404, 409),
    },
    openapi_extra=request_body_schema(VideoIn),
)
def generate_video(
    compute: ComputeHeaders,
    conditional: IfNoneMatch,
    once: Once,
    body: VideoIn = Depends(VIDEO_BODY),
    cache_seconds: CacheSeconds = None,
) -> Response:
    def handle() -> Response:
        state = once.state
        renders = Renders(state)
        renders.check_callback(body.callback_url)
        z_sequence, mask_record, etag = renders.video_plan(body, compute.gpu)
        if (not_modified := conditional.not_modified(etag)) is not None:
            return not_modified
        headers = {"ETag": f'"{etag}"'}
        if body.async_ or len(z_sequence) > state.settings.sync_max_frames:
            job = renders.submit_video(
                body, z_sequence, etag, compute.gpu, compute.count, once.key.id, cache_seconds
            )
            return accepted(state, job.id, headers)
        result = renders.render_video(
            body, z_sequence, mask_record, etag, cache_seconds, compute.gpu
        )
        return JSONResponse(result, headers=headers)

    return once.run(body, handle)


@router.post(
    "/nerf",
    summary="Generate NeRF Model or Video",
    responses={
        200: {"model": NerfOut},
        202: {"model": JobAccepted, "description": "Accepted: an async job"},
        304: {"description": "Not modified"},
        **errors(404, 409),
    },
)
def generate_nerf(
    body: NerfIn,
    compute: ComputeHeaders,
    conditional: IfNoneMatch,
    once: Once,
    cache_seconds: CacheSeconds = None,
) -> Response:
    def handle() -> Response:
        state = once.state
        nerfs = Nerfs(state)
        nerfs.renders.check_callback(body.callback_url)
        cameras, size, mask_record, etag = nerfs.plan(body, compute.gpu)
        if (not_modified := conditional.not_modified(etag)) is not None:
            return not_modified
        headers = {"ETag": f'"{etag}"'}
        if nerfs.should_queue(body, cameras, size):
            job = nerfs.submit(
                body,
                cameras,
                mask_record,
                etag,
                compute.gpu,
                compute.count,
                once.key.id,
                cache_seconds,
            )
            return accepted(state, job.id, headers)
        result = nerfs.render(body, cameras, size, mask_record, etag, cache_seconds)
        return JSONResponse(result, headers=headers)

    return once.run(body, handle)

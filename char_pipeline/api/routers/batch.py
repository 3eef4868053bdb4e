"""POST /v1/batch/video: many independent videos; one bad task does not sink the batch."""

import hashlib
import secrets

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from char_pipeline.api.body_limits import json_body, request_body_schema
from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.errors import ApiError
from char_pipeline.api.idempotency import Idempotency
from char_pipeline.api.schemas import BatchIn
from char_pipeline.api.service import Renders, etag_matches, gpu_settings
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.jobstore import ApiKey

router = APIRouter(prefix="/v1/batch", tags=["Batch Processing"])
WRITE = require_scope("generate:write")
BATCH_BODY = json_body(BatchIn)  # parsed off the event loop
SYNC_BATCH_FACTOR = 4  # a sync batch renders at most this many sync-sized videos' frames


def _task_error(exc: Exception) -> dict:
    if isinstance(exc, ApiError):
        return {"code": exc.code, "message": exc.message, "details": exc.details}
    assert isinstance(exc, CharPipelineError)
    return {
        "code": exc.code,
        "message": exc.message,
        "details": {k: str(v) for k, v in exc.details.items()},
    }


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
        renders = Renders(state)
        plans: list[tuple[int, object, tuple] | tuple[int, object, dict]] = []
        for index, task in enumerate(body.tasks):
            task.callback_url = task.callback_url or body.callback_url
            try:
                renders.check_callback(task.callback_url)
                plans.append((index, task, renders.video_plan(task, gpu)))
            except (ApiError, CharPipelineError) as exc:
                plans.append((index, task, {"error": _task_error(exc)}))
        planned = [p for p in plans if isinstance(p[2], tuple)]
        etag = (
            "b"
            + hashlib.sha256(
                "|".join(p[2][2] if isinstance(p[2], tuple) else "x" for p in plans).encode()
            ).hexdigest()[:40]
        )
        headers = {"ETag": f'"{etag}"'}
        if etag_matches(if_none_match, f'"{etag}"'):
            return Response(status_code=304, headers=headers)
        limit = state.settings.sync_max_frames
        frames = [len(p[2][0]) for p in planned]
        run_sync = (
            not body.async_
            and all(f <= limit for f in frames)
            and sum(frames) <= SYNC_BATCH_FACTOR * limit
        )
        if run_sync:
            results = []
            for index, task, plan in plans:
                if isinstance(plan, dict):
                    results.append(
                        {"task_index": index, "reference_image_id": task.reference_image_id, **plan}
                    )
                    continue
                z_sequence, mask_record, task_etag = plan
                try:
                    result = renders.render_video(
                        task, z_sequence, mask_record, task_etag, custom_cache_duration_seconds
                    )
                    results.append({"task_index": index, **result})
                except CharPipelineError as exc:
                    results.append(
                        {
                            "task_index": index,
                            "reference_image_id": task.reference_image_id,
                            "error": _task_error(exc),
                        }
                    )
            return JSONResponse({"results": results}, headers=headers)
        batch_id = "job_" + secrets.token_hex(8)
        tasks: list[dict] = []
        specs, ttls, positions = [], [], []
        for index, task, plan in plans:
            if isinstance(plan, dict):
                tasks.append(
                    {
                        "task_index": index,
                        "reference_image_id": task.reference_image_id,
                        "status": "failed",
                        **plan,
                    }
                )
                continue
            z_sequence, _, task_etag = plan
            # Tasks that share size, rate and format render in one run (across references).
            group = f"{batch_id}:{task.resolution}:{task.fps}:{task.format}"
            specs.append(
                renders.job_spec(
                    task,
                    z_sequence,
                    task_etag,
                    gpu,
                    count,
                    key.id,
                    custom_cache_duration_seconds,
                    group,
                )
            )
            ttls.append(task.url_ttl)
            positions.append(len(tasks))
            tasks.append({"task_index": index})
        for position, job in zip(
            positions, renders.create_jobs(specs, ttls) if specs else [], strict=True
        ):
            tasks[position].update(
                job_id=job.id, status_url=f"{state.settings.base_url}/v1/jobs/{job.id}"
            )
        state.jobs.create_job(
            kind="batch",
            reference_image_id=body.tasks[0].reference_image_id,
            request={"tasks": tasks},
            api_key_id=key.id,
            gpu_type=gpu,
            instance_count=count,
            job_id=batch_id,
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

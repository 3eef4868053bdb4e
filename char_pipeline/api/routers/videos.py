"""`/v1/videos` of the Sora-style door: OpenAI's video object over the one video job.

A router over services/videos.py. The body is JSON or multipart/form-data, as OpenAI's video
API and the seed's sample send it; the seed's sample sets ``Content-Type:
multipart/form-data`` by hand, without the boundary its body uses, so a missing boundary is
read from the body's first line rather than refusing a client written for that service.
"""

import email.parser
import json

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from char_pipeline.api.deps import AppState, account_state
from char_pipeline.api.errors import ApiError
from char_pipeline.api.openapi import errors
from char_pipeline.api.plumbing import ComputeHeaders, Once
from char_pipeline.services.requests import VideoCreateIn
from char_pipeline.services.videos import Videos

router = APIRouter(prefix="/v1/videos", tags=["Videos (Sora-style)"])
READER = Depends(account_state("generate:write"))


async def video_body(request: Request) -> VideoCreateIn:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        fields = _multipart_fields(raw, content_type)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        fields = dict((await request.form()).items())
    else:
        try:
            fields = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"The body is not valid JSON: {exc.msg}.") from exc
        if not isinstance(fields, dict):
            raise ApiError(422, "The body must be a JSON object.")
    try:
        return VideoCreateIn(**fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise ApiError(422, f"{field}: {problem['msg']}.", details={"field": field}) from exc


def _multipart_fields(raw: bytes, content_type: str) -> dict[str, str]:
    if "boundary=" not in content_type:
        first = raw.split(b"\r\n", 1)[0]
        if not first.startswith(b"--") or len(first) < 3:
            raise ApiError(400, "multipart/form-data without a boundary, and none in the body.")
        content_type = f"multipart/form-data; boundary={first[2:].decode('latin-1')}"
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw
    )
    if not message.is_multipart():
        raise ApiError(400, "The multipart body could not be read.")
    fields = {}
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return fields


@router.post("", summary="Create a Video of @mentioned Characters", responses=errors(404, 409))
async def create_video(request: Request, compute: ComputeHeaders, once: Once) -> Response:
    body = await video_body(request)

    def handle() -> Response:
        view = Videos(once.state).create(
            model=body.model,
            prompt=body.prompt,
            size=body.size,
            seconds=body.seconds,
            gpu=compute.gpu,
            count=compute.count,
            key_id=once.key.id,
            callback_url=body.callback_url,
        )
        return JSONResponse(view)

    return await anyio.to_thread.run_sync(once.run, body, handle)


@router.get("", summary="List Videos", responses=errors(404))
def list_videos(
    limit: int = Query(20, ge=1, le=100),
    after: str | None = Query(None, max_length=40, description="last_id of the previous page."),
    state: AppState = READER,
) -> dict:
    return Videos(state).listing(limit, after)


@router.get("/{video_id}", summary="Get a Video", responses=errors(404))
def get_video(video_id: str, state: AppState = READER) -> dict:
    return Videos(state).get(video_id)


@router.get("/{video_id}/content", summary="Download a Video's MP4", responses=errors(404, 409))
def video_content(video_id: str, state: AppState = READER) -> Response:
    return Response(Videos(state).content(video_id), media_type="video/mp4")


@router.delete("/{video_id}", summary="Delete a Video", responses=errors(404))
def delete_video(video_id: str, state: AppState = READER) -> dict:
    return Videos(state).delete(video_id)

import mimetypes
from pathlib import PurePosixPath

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, Response

from char_pipeline.api.deps import AppState, app_state
from char_pipeline.api.errors import ApiError
from char_pipeline.api.openapi import errors
from char_pipeline.links import verify

router = APIRouter(prefix="/v1/files", tags=["Downloads"])


@router.get(
    "/{key:path}",
    summary="Download an artifact through a signed link",
    responses={
        200: {
            "description": "The file",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in (
                    "video/mp4",
                    "image/gif",
                    "image/png",
                    "application/json",
                    "application/octet-stream",
                )
            },
        },
        **errors(403, 404),
    },
)
def download(
    key: str,
    expires: int = Query(...),
    signature: str = Query(...),
    state: AppState = Depends(app_state),
) -> Response:
    if not verify(state.signing_key, key, expires, signature):
        raise ApiError(403, "This link is invalid or has expired.", code="Forbidden")
    if ".." in PurePosixPath(key).parts or not state.store.exists(key):
        raise ApiError(404, "The file no longer exists.")
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    if state.store.is_local:
        return FileResponse(
            state.store.uri(key),
            media_type=media_type,
            headers={"Cache-Control": "private, max-age=3600"},
        )
    return Response(state.store.read_bytes(key), media_type=media_type)

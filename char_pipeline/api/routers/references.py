import base64
import functools
import hashlib

import anyio
from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile

from char_pipeline.api.deps import AppState, account_state
from char_pipeline.api.errors import ApiError
from char_pipeline.api.openapi import errors
from char_pipeline.api.plumbing import etag_matches
from char_pipeline.api.schemas import IdentityFeaturesOut, ReferenceMetadata, ReferenceUploaded
from char_pipeline.services.references import References

router = APIRouter(prefix="/v1/reference-image", tags=["Reference Image Processing"])
READER = Depends(account_state("reference:read"))


@router.post("", response_model=ReferenceUploaded, summary="Upload Reference Image")
async def upload_reference_image(
    request: Request,
    image: UploadFile = File(...),
    name: str = Form(""),
    keypoints: str | None = Form(
        None,
        description="Optional JSON list of the subject's keypoints (x, y in 0..1, COCO-17 name or index): they replace pose detection in the rig.",
    ),
    state: AppState = READER,
) -> dict:
    limit = state.settings.max_image_bytes
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            400,
            f"The image is larger than the limit of {limit:,} bytes.",
            details={"max_bytes": limit},
        )
    # Decoding and checking the image is CPU work: off the event loop, like the big JSON bodies.
    upload = functools.partial(
        References(state).upload,
        data,
        name or image.filename or "",
        keypoints=_keypoints_field(keypoints),
    )
    return await anyio.to_thread.run_sync(upload)


def _keypoints_field(text: str | None) -> list[dict] | None:
    if text is None or not text.strip():
        return None
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"keypoints is not valid JSON: {exc.msg}.", details={"field": "keypoints"}
        ) from exc
    if not isinstance(value, list):
        raise ApiError(422, "keypoints must be a JSON list.", details={"field": "keypoints"})
    return value  # its shape is checked by the service, before anything is stored


@router.get(
    "/{reference_image_id}",
    response_model=ReferenceMetadata,
    summary="Get Reference-Image Metadata",
    responses=errors(404),
)
def get_reference_image(reference_image_id: str, state: AppState = READER) -> dict:
    return References(state).metadata(reference_image_id)


@router.get(
    "/{reference_image_id}/mask",
    summary="Retrieve Segmentation Mask",
    responses={
        200: {"content": {"image/png": {}, "application/json": {}}},
        304: {"description": "Not modified"},
        **errors(404),
    },
)
def get_mask(
    reference_image_id: str,
    format: str = Query("png", pattern="^(png|base64)$"),
    if_none_match: str | None = Header(None),
    state: AppState = READER,
) -> Response:
    png = References(state).mask_png(reference_image_id)
    etag = '"m' + hashlib.sha256(png).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if format == "base64":
        body = {
            "reference_image_id": reference_image_id,
            "format": "base64",
            "mask": base64.b64encode(png).decode(),
        }
        import json

        return Response(json.dumps(body), media_type="application/json", headers=headers)
    return Response(png, media_type="image/png", headers=headers)


@router.get(
    "/{reference_image_id}/features",
    response_model=IdentityFeaturesOut,
    summary="Extract Identity Features",
    responses=errors(404),
)
def get_features(
    reference_image_id: str,
    model: str = Query("cnn", pattern="^(cnn|vit)$"),
    state: AppState = READER,
) -> dict:
    return References(state).features(reference_image_id, model)

from fastapi import APIRouter, Depends, Query

from char_pipeline import processing
from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.errors import ApiError
from char_pipeline.api.schemas import (
    LatentControlOut,
    PoseControlIn,
    PoseControlOut,
    TextControlIn,
    TextControlOut,
)
from char_pipeline.api.service import References
from char_pipeline.engine.controls import Keypoint, encode_pose, latent_sequence
from char_pipeline.engine.motion import text_sequence

router = APIRouter(prefix="/v1/control", tags=["Conditional Control Signals"])
WRITE = Depends(require_scope("control:write"))
MAX_STEPS = 10_000


def _round(values) -> list[float]:
    return [round(float(v), 6) for v in values]


@router.post(
    "/pose",
    response_model=PoseControlOut,
    summary="Generate Pose Control Signal",
    dependencies=[WRITE],
)
def pose_control(body: PoseControlIn, state: AppState = Depends(app_state)) -> dict:
    mask_record = References(state).require_processed(body.reference_image_id)
    rest = processing.rest_pose(state.store, mask_record)
    if body.reference_keypoints is not None:
        from char_pipeline.engine.rig import client_rest_pose

        rest = client_rest_pose(
            [k.model_dump() for k in body.reference_keypoints],
            tuple(mask_record["bbox"]),
            rest.image_size,
        )
    keypoints = [Keypoint(**k.model_dump()) for k in body.keypoints]
    z_t = encode_pose(keypoints, rest)
    return {
        "reference_image_id": body.reference_image_id,
        "frame_index": body.frame_index,
        "z_t": _round(z_t),
    }


@router.post(
    "/text",
    response_model=TextControlOut,
    summary="Generate Text Control Signal",
    dependencies=[WRITE],
)
def text_control(body: TextControlIn, state: AppState = Depends(app_state)) -> dict:
    References(state).metadata(body.reference_image_id)  # 404 for unknown references
    if body.steps > MAX_STEPS:
        raise ApiError(422, f"steps must be at most {MAX_STEPS}.", details={"field": "steps"})
    # 'custom-nlp' is MiniLM; 'clip' a local CLIP text encoder, or 422 ModelNotInstalled.
    # Library words decide first; the response says which matcher answered.
    z_sequence, plan = text_sequence(body.prompt, body.steps, model=body.model)
    if plan.similarity is None:
        matcher = "keyword"
    else:
        matcher = "minilm" if body.model == "custom-nlp" else "clip"
    return {
        "reference_image_id": body.reference_image_id,
        "steps": body.steps,
        "model": body.model,
        "motion": plan.primary,
        "overlay": plan.overlay,
        "matcher": matcher,
        "similarity": None if plan.similarity is None else round(plan.similarity, 4),
        "z_sequence": [_round(z) for z in z_sequence],
    }


@router.post(
    "/latent",
    response_model=LatentControlOut,
    summary="Generate Custom Latent Codes",
    dependencies=[WRITE],
)
def latent_control(
    length: int = Query(..., ge=1, le=MAX_STEPS),
    seed: int | None = Query(None),
    distribution: str = Query("gaussian", pattern="^(gaussian|uniform)$"),
) -> dict:
    z_sequence = latent_sequence(length, seed, distribution)
    return {
        "length": length,
        "seed": seed,
        "distribution": distribution,
        "z_sequence": [_round(z) for z in z_sequence],
    }

from fastapi import APIRouter, Depends, Query

from char_pipeline.api.deps import AppState, account_state, require_scope
from char_pipeline.api.openapi import errors
from char_pipeline.api.schemas import (
    ClipControlIn,
    ClipControlOut,
    LatentControlOut,
    PoseControlIn,
    PoseControlOut,
    TextControlIn,
    TextControlOut,
)
from char_pipeline.services import controls

router = APIRouter(prefix="/v1/control", tags=["Conditional Control Signals"])
WRITE = Depends(require_scope("control:write"))
WRITER = Depends(account_state("control:write"))
MAX_STEPS = controls.MAX_STEPS


@router.post(
    "/pose",
    response_model=PoseControlOut,
    summary="Generate Pose Control Signal",
    responses=errors(404),
)
def pose_control(body: PoseControlIn, state: AppState = WRITER) -> dict:
    return controls.pose_control(state, body)


@router.post(
    "/text",
    response_model=TextControlOut,
    summary="Generate Text Control Signal",
    responses=errors(404),
)
def text_control(body: TextControlIn, state: AppState = WRITER) -> dict:
    return controls.text_control(state, body)


@router.post(
    "/clip",
    response_model=ClipControlOut,
    summary="Retarget a Motion Clip (BVH)",
    responses=errors(404),
)
def clip_control(body: ClipControlIn, state: AppState = WRITER) -> dict:
    """A motion-capture clip — one of the library's (wave_hello, jumping, dab) or a BVH
    file's text — retargeted onto the reference's rig: a z sequence for /v1/generate/video."""
    return controls.clip_control(state, body)


@router.post(
    "/latent",
    response_model=LatentControlOut,
    summary="Generate Custom Latent Codes",
    dependencies=[WRITE],
)
def latent_control(
    length: int = Query(..., ge=1, le=MAX_STEPS),
    seed: int | None = Query(None, ge=0, le=2**32 - 1),
    distribution: str = Query("gaussian", pattern="^(gaussian|uniform)$"),
    loop: bool = Query(
        True,
        description="The sequence loops seamlessly: its last frame steps to its first like any "
        "frame to the next (GIFs and looped videos have no seam). false: an open sequence.",
    ),
) -> dict:
    return controls.latent_control(length, seed, distribution, loop=loop)

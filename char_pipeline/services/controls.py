"""Control signals: a pose's z_t, a text prompt's z sequence, seeded latent codes."""

from __future__ import annotations

from char_pipeline import catalog
from char_pipeline.engine.controls import Keypoint, encode_pose, latent_sequence
from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.engine.motion import text_sequence
from char_pipeline.services import processing
from char_pipeline.services.context import ServiceContext
from char_pipeline.services.references import References
from char_pipeline.services.requests import ClipControlIn, PoseControlIn, TextControlIn
from char_pipeline.settings import parse_aliases

MAX_STEPS = 10_000


def _round(values) -> list[float]:
    return [round(float(v), 6) for v in values]


def pose_control(ctx: ServiceContext, body: PoseControlIn) -> dict:
    mask_record = References(ctx).require_processed(body.reference_image_id)
    rest = processing.rest_pose(ctx.store, mask_record)
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


def text_model_aliases(setting: str) -> dict[str, str]:
    """'clip=custom-nlp,…' → {'clip': 'custom-nlp'}; unknown names are a settings error."""
    return parse_aliases(setting, TEXT_MODELS, "CHAR_TEXT_MODEL_ALIASES")


TEXT_MODELS = ("clip", "custom-nlp")


def text_control(ctx: ServiceContext, body: TextControlIn) -> dict:
    References(ctx).metadata(body.reference_image_id)  # 404 for unknown references
    if body.steps > MAX_STEPS:
        raise InvalidInputError(f"steps must be at most {MAX_STEPS}.", field="steps")
    # 'custom-nlp' is MiniLM; 'clip' a local CLIP text encoder, or 422 ModelNotInstalled.
    # Library words decide first; the response says which matcher answered.
    # A deployment may answer a model it lacks with another (text_model_aliases); never
    # silently: the response's served_by names the model that ran.
    served_by = text_model_aliases(ctx.settings.text_model_aliases).get(body.model, body.model)
    rigged = _rig_record(ctx, body.reference_image_id)
    kind = body.subject_kind or rigged.get("subject_kind")
    z_sequence, plan = text_sequence(
        body.prompt,
        body.steps,
        model=served_by,
        subject_kind=kind,
        free_arm=rigged.get("free_arm"),
    )
    if plan.similarity is None:
        matcher = "keyword"
    else:
        matcher = "minilm" if served_by == "custom-nlp" else "clip"
    return {
        "reference_image_id": body.reference_image_id,
        "steps": body.steps,
        "model": body.model,
        "served_by": served_by,
        "motion": plan.primary,
        "overlay": plan.overlay,
        "matcher": matcher,
        "similarity": None if plan.similarity is None else round(plan.similarity, 4),
        "notice": plan.notice,
        "subject_kind": kind,
        "motion_reason": plan.kind_reason,
        "arm": plan.arm,
        "z_sequence": [_round(z) for z in z_sequence],
    }


def _rig_record(ctx: ServiceContext, reference_id: str) -> dict:
    """What its rig found: the kind (engine/kinds.py) and the free arm (engine/limbs.py);
    empty before the reference is processed."""
    key = catalog.record_key("subject_mask", reference_id)
    return ctx.store.read_json(key) if ctx.store.exists(key) else {}


def latent_control(length: int, seed: int | None, distribution: str, *, loop: bool = True) -> dict:
    z_sequence = latent_sequence(length, seed, distribution, loop=loop)
    return {
        "length": length,
        "seed": seed,
        "distribution": distribution,
        "loop": loop,
        "z_sequence": [_round(z) for z in z_sequence],
    }


def clip_control(ctx: ServiceContext, body: ClipControlIn) -> dict:
    """A motion clip (the library's, or a BVH file) retargeted onto the reference's rig."""
    from char_pipeline.engine.bvh import load_clip, loop_clip, retarget

    if (body.clip is None) == (body.bvh is None):
        raise InvalidInputError("Give either clip (a library name) or bvh (a file's text).")
    if body.steps is not None and body.steps > MAX_STEPS:
        raise InvalidInputError(f"steps must be at most {MAX_STEPS}.", field="steps")
    mask_record = References(ctx).require_processed(body.reference_image_id)
    clip = load_clip(body.clip if body.clip is not None else body.bvh)
    z_sequence = retarget(
        clip,
        processing.rest_pose(ctx.store, mask_record),
        fps=body.fps,
        steps=body.steps,
        subject_kind=mask_record.get("subject_kind"),
    )
    if body.loop:
        z_sequence = loop_clip(z_sequence)
    if len(z_sequence) > MAX_STEPS:
        raise InvalidInputError(
            f"The clip makes {len(z_sequence)} frames at {body.fps} fps; at most {MAX_STEPS}.",
            field="fps",
        )
    return {
        "reference_image_id": body.reference_image_id,
        "clip": body.clip or "upload",
        "frames": len(z_sequence),
        "fps": body.fps,
        "source_fps": round(1.0 / clip.frame_time, 3),
        "seconds": round(clip.seconds, 3),
        "loop": body.loop,
        "subject_kind": mask_record.get("subject_kind"),
        "z_sequence": [_round(z) for z in z_sequence],
    }

"""What the use cases take: request bodies, field for field as the seed spells them.

Pydantic models (validated by each door before a service sees them); the REST API declares
them as its request schemas, the CLI and the manifest code build them from their own inputs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from char_pipeline.engine.controls import Z_DIM
from char_pipeline.engine.kinds import SubjectKind

# The layout's length is checked by the engine (its error names the layout and the docs);
# the schema states it too, so generated clients and fuzzers send vectors that fit.
Z_VECTOR_SCHEMA = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": Z_DIM,
    "maxItems": Z_DIM,
    "description": f"A control vector: {Z_DIM} numbers in layout v1 (docs/controls.md).",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeypointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float
    y: float
    z: float | None = None
    confidence: float | None = None
    name: str | None = None
    index: int | None = None


class PoseControlIn(Strict):
    reference_image_id: str
    keypoints: list[KeypointIn] = Field(min_length=1)
    reference_keypoints: list[KeypointIn] | None = Field(
        default=None,
        description="Optional: where these joints are in the reference image (x, y in 0..1); replaces the detected rest pose for this request.",
    )
    format: Literal["json", "base64"] = "json"
    frame_index: int = Field(default=0, ge=0)


class TextControlIn(Strict):
    reference_image_id: str
    prompt: str = Field(min_length=1, max_length=2000)
    steps: int = Field(ge=1)
    model: Literal["clip", "custom-nlp"] = "clip"
    subject_kind: SubjectKind | None = Field(
        default=None,
        description="Override the kind of subject the reference's rig found (which motions "
        "apply: a portrait nods instead of waving, an object hops).",
    )


class ClipControlIn(Strict):
    """A motion-capture clip retargeted onto the reference (engine/bvh.py): a clip of the
    library by name, or a BVH file's text."""

    reference_image_id: str
    clip: str | None = Field(
        default=None,
        description="A clip of the library: wave_hello, jumping, dab (people and drawn "
        "figures), quadruped_walk (four-legged animals).",
    )
    bvh: str | None = Field(default=None, description="The text of a BVH file (≤ 8 MB).")
    fps: int = Field(default=24, ge=1, le=120, description="Frames per second of the result.")
    loop: bool = Field(
        default=True,
        description="Ease the clip's last quarter back into its first pose, so it loops "
        "without a jump (a GIF); false plays it as recorded.",
    )
    steps: int | None = Field(
        default=None,
        ge=1,
        description="Frames to spread the clip over (default: its duration at fps).",
    )


Resolution = Field(default="720x720", pattern=r"^\d+x\d+$", description="WIDTHxHEIGHT")


class Weights(Strict):
    # Extensions for the generative modes (docs/generators.md); the mesh renderer ignores them.
    prompt: str | None = Field(
        default=None,
        max_length=2000,
        description="diffusion/transformer: what the frames should look like (default: the "
        "reference's character, consistent appearance).",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="diffusion/transformer: noise seed (default: derived from the request, so "
        "the same request gives the same frames).",
    )
    identity_strength: float | None = None
    temporal_strength: float | None = None
    perceptual_weight: float | None = None
    adv_weight: float | None = None
    pose_smoothness: float | None = None
    url_ttl: int | None = Field(default=None, ge=1, le=365 * 24 * 3600)


class FrameIn(Weights):
    reference_image_id: str
    control_type: Literal["pose", "text", "latent"]
    z_t: list[float] = Field(json_schema_extra=Z_VECTOR_SCHEMA)
    resolution: str = Resolution
    model: Literal["gan", "diffusion", "transformer"] = "gan"
    output_format: Literal["url", "base64"] = "url"
    include_mask: bool = False
    frame_index: int = Field(default=0, ge=0)


class VideoTask(Weights):
    """One video to render: the body of /v1/generate/video and each task of a batch."""

    reference_image_id: str
    control_type: Literal["pose", "text", "latent"]
    z_sequence: list[list[float]] = Field(
        min_length=1, json_schema_extra={"items": Z_VECTOR_SCHEMA}
    )
    format: Literal["mp4", "gif"] = "mp4"
    resolution: str = Resolution
    fps: int = Field(default=30, ge=1, le=120)
    model: Literal["gan", "diffusion", "transformer"] = "gan"
    callback_url: str | None = Field(default=None, max_length=2000)
    include_mask: bool = False


class VideoIn(VideoTask):
    async_: bool = Field(default=False, alias="async")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BatchTask(VideoTask):
    """A batch task: a video without its own async flag (the batch has one)."""


class BatchIn(Strict):
    tasks: list[BatchTask] = Field(min_length=1, max_length=100)
    async_: bool = Field(default=False, alias="async")
    callback_url: str | None = Field(default=None, max_length=2000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CameraPoseIn(BaseModel):
    """A camera in the subject's normalised frame (docs/nerf.md): unit height, centred at the
    origin, +y up, the reference camera on +z. ``fov`` is vertical, in degrees."""

    model_config = ConfigDict(extra="forbid")

    position: list[float] = Field(min_length=3, max_length=3)
    look_at: list[float] = Field(default=[0.0, 0.0, 0.0], min_length=3, max_length=3)
    up: list[float] = Field(default=[0.0, 1.0, 0.0], min_length=3, max_length=3)
    fov: float = 40.0


class NerfIn(Strict):
    reference_image_id: str
    camera_trajectory: list[CameraPoseIn] = Field(min_length=1)
    resolution: str = Field(default="320x240", pattern=r"^\d+x\d+$", description="WIDTHxHEIGHT")
    output_format: Literal["nerf_model", "video"] = "video"
    fps: int | None = Field(default=24, ge=1, le=120)
    url_ttl: int | None = Field(default=None, ge=1, le=365 * 24 * 3600)
    async_: bool = Field(default=False, alias="async")
    callback_url: str | None = Field(default=None, max_length=2000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CharacterIn(Strict):
    """POST /sora/v1/characters (seed 002): a character from a 1–3 s segment of a video."""

    model: str = Field(description="Fixed value: sora-character.")
    url: str | None = Field(
        default=None, max_length=2000, description="A public https URL of the video (≤ 15 s)."
    )
    video_id: str | None = Field(
        default=None,
        max_length=80,
        description="Instead of url: a video this service rendered for the account (a job id).",
    )
    timestamps: str = Field(
        max_length=40, description="'start,end' in seconds, 1–3 s apart, e.g. '1,3'."
    )
    username: str | None = Field(
        default=None,
        max_length=40,
        description="Extension: the @name to give it (a–z, 0–9, '_', '.'); default derived.",
    )
    display_name: str | None = Field(default=None, max_length=200, description="Extension.")


class VideoCreateIn(Strict):
    """POST /v1/videos (the Sora-style door, OpenAI's video API): JSON or multipart fields."""

    model: str | None = Field(default=None, max_length=80)
    prompt: str = Field(min_length=1, max_length=2000)
    size: str | None = Field(default=None, max_length=20, description="WIDTHxHEIGHT (1280x720).")
    seconds: str | int | None = Field(default=None, description="1–20 (default 4).")
    callback_url: str | None = Field(default=None, max_length=2000)

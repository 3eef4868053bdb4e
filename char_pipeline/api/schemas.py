"""Response bodies, field for field as the seed spells them; the request bodies are the
services' own models (``char_pipeline.services.requests``), re-exported here for the routers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from char_pipeline.services.requests import (  # noqa: F401  (the routers import them from here)
    BatchIn,
    BatchTask,
    CameraPoseIn,
    ClipControlIn,
    FrameIn,
    KeypointIn,
    NerfIn,
    PoseControlIn,
    Resolution,
    Strict,
    TextControlIn,
    VideoIn,
    VideoTask,
    Weights,
)


class ReferenceUploaded(BaseModel):
    reference_image_id: str
    width: int
    height: int
    uploaded_at: str


class ReferenceMetadata(ReferenceUploaded):
    name: str | None = None
    status: Literal["pending", "processed", "failed"]
    error: dict | None = None
    subject_kind: str | None = Field(
        default=None,
        description="person, portrait, animal, quadruped, object or figure (once processed): which "
        "joints move and which motions apply (docs/controls.md).",
    )
    kind_reason: str | None = None


class IdentityFeaturesOut(BaseModel):
    reference_image_id: str
    model: Literal["cnn", "vit"]
    feature_dim: int
    f_identity: list[float]


class PoseControlOut(BaseModel):
    reference_image_id: str
    control_type: Literal["pose"] = "pose"
    frame_index: int
    z_t: list[float]


class TextControlOut(BaseModel):
    reference_image_id: str
    control_type: Literal["text"] = "text"
    steps: int
    model: str
    served_by: str = Field(description="The text model that ran (text_model_aliases).")
    motion: str
    overlay: str | None
    matcher: Literal["minilm", "clip", "keyword"]
    similarity: float | None = None
    notice: str | None = Field(
        default=None,
        description="Set when the motion played may not be the one asked for (similarity "
        "below 0.35, or no motion matched and idle played).",
    )
    subject_kind: str | None = Field(
        default=None, description="The kind of subject the motion was chosen for."
    )
    motion_reason: str | None = Field(
        default=None,
        description="Why the motion played differs from the prompt's: it does not apply to "
        "this kind of subject, and the nearest one that does was played.",
    )
    arm: str | None = Field(
        default=None,
        description="The arm a one-arm motion (wave) plays on: the subject's free arm, the "
        "one not holding anything (left or right); None when no such motion plays.",
    )
    z_sequence: list[list[float]]


class ClipControlOut(BaseModel):
    reference_image_id: str
    control_type: Literal["clip"] = "clip"
    clip: str = Field(description="The library clip's name, or 'upload'.")
    frames: int
    fps: int
    source_fps: float = Field(description="The clip's own frame rate (1 / Frame Time).")
    seconds: float
    loop: bool = Field(description="Whether the clip's end eases back into its first pose.")
    subject_kind: str | None = Field(
        default=None,
        description="The reference's kind: a quadruped takes the clip seen from the side.",
    )
    z_sequence: list[list[float]]


class LatentControlOut(BaseModel):
    control_type: Literal["latent"] = "latent"
    length: int
    seed: int | None
    distribution: str
    loop: bool = True
    z_sequence: list[list[float]]


class JobAccepted(BaseModel):
    job_id: str
    status_url: str


class Open(BaseModel):
    """A response whose listed fields are always there; others may be added (documented in
    docs/api.md) without breaking clients."""

    model_config = ConfigDict(extra="allow")


class Backend(Open):
    renderer: str
    device: str


class FrameOut(Open):
    reference_image_id: str
    frame_index: int
    control_type: str
    resolution: str
    etag: str
    backend: Backend
    image_url: str | None = None
    image_base64: str | None = None
    mask_url: str | None = None


class VideoOut(Open):
    reference_image_id: str
    control_type: str
    etag: str
    backend: Backend
    video_url: str
    frames: int
    fps: int
    resolution: str


class NerfOut(Open):
    reference_image_id: str
    output_format: Literal["nerf_model", "video"]
    etag: str
    model_url: str
    model_format: str
    video_url: str | None = None
    image_url: str | None = None


class JobError(BaseModel):
    code: str
    message: str
    details: dict


class JobOut(Open):
    job_id: str
    kind: Literal["video", "nerf", "batch"] | None = None
    status: Literal["pending", "processing", "completed", "failed", "cancelled"]
    progress: float
    message: str | None
    created_at: str
    updated_at: str
    result: dict | None = None
    error: JobError | None = None


class BatchTaskOut(Open):
    task_index: int


class BatchOut(JobOut):
    kind: Literal["batch"]
    tasks: list[BatchTaskOut]


class JobList(BaseModel):
    data: list[JobOut | BatchOut]
    has_more: bool
    next_cursor: str | None


class BatchResults(BaseModel):
    results: list[BatchTaskOut]


class BatchAccepted(JobAccepted):
    batch_id: str
    tasks: list[BatchTaskOut]

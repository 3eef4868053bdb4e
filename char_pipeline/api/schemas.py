"""Response bodies, field for field as the seed spells them; the request bodies are the
services' own models (``char_pipeline.services.requests``), re-exported here for the routers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from char_pipeline.services.requests import (  # noqa: F401  (the routers import them from here)
    BatchIn,
    BatchTask,
    CameraPoseIn,
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
    motion: str
    overlay: str | None
    matcher: Literal["minilm", "clip", "keyword"]
    similarity: float | None = None
    z_sequence: list[list[float]]


class LatentControlOut(BaseModel):
    control_type: Literal["latent"] = "latent"
    length: int
    seed: int | None
    distribution: str
    z_sequence: list[list[float]]


class JobAccepted(BaseModel):
    job_id: str
    status_url: str

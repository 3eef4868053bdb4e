"""Typed errors raised by the engine.

Each error carries a stable ``code`` (the API maps it to the seed's error envelope) and
``details`` that a client can act on. Messages are written for the person reading them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class CharPipelineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "InternalError"
    http_status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class BadRequestError(CharPipelineError):
    """The input cannot be read at all (the API answers 400)."""

    code = "BadRequest"
    http_status = 400


class NotFoundError(CharPipelineError):
    """No such object, or not yet (the API answers 404)."""

    code = "NotFound"
    http_status = 404


class ConflictError(CharPipelineError):
    """The object is in a state that does not allow this (the API answers 409)."""

    code = "Conflict"
    http_status = 409


class InvalidInputError(CharPipelineError):
    """The input is well-formed but semantically wrong (the API answers 422)."""

    code = "UnprocessableEntity"
    http_status = 422


class ImageDecodeError(InvalidInputError):
    """The bytes are not a readable image (corrupt, truncated, or not an image at all)."""


class UnsupportedImageFormatError(InvalidInputError):
    """The image decodes but its format is not one we accept."""


class ImageTooLargeError(InvalidInputError):
    """The image exceeds the byte or pixel limits (decompression-bomb protection)."""


class EmptySubjectError(InvalidInputError):
    """Segmentation found no subject to animate."""


class ControlVectorError(InvalidInputError):
    """A control vector or sequence does not follow the z layout (docs/controls.md)."""


class KeypointError(InvalidInputError):
    """Keypoint data is malformed: NaN, out of range, unknown joint, too few joints."""


class EmptyFrameError(InvalidInputError):
    """A rendered frame lost the subject: never encoded as if all were well."""

    code = "EmptyFrame"


class MotionClipError(InvalidInputError):
    """A motion clip (BVH) that cannot be read or has no body the retargeting can use."""

    code = "InvalidMotionClip"


class DeformationError(InvalidInputError):
    """The mesh solver could not pose this subject (deterministic: retrying will not help)."""

    code = "DeformationFailed"


class ModelNotInstalledError(CharPipelineError):
    """A requested model needs weights that are not available on this machine."""

    code = "ModelNotInstalled"
    http_status = 422


def configured_model_folder(env_var: str, model: str, advice: str) -> Path:
    """The local transformers model folder ``env_var`` names, or ModelNotInstalledError
    (no model hub is reachable here: optional models are folders an operator installs)."""
    configured = os.environ.get(env_var, "").strip()
    if not configured or not (Path(configured) / "config.json").is_file():
        raise ModelNotInstalledError(
            f"The '{model}' model is not installed on this server: set {env_var} to {advice}",
            model=model,
        )
    return Path(configured)


class ResourceExhaustedError(CharPipelineError):
    """The render does not fit the compute budget (the seed's FAQ Q7)."""

    code = "ResourceExhausted"
    http_status = 422


class ResourceUnavailableError(CharPipelineError):
    """The mode needs hardware this server does not have (a GPU): 503, since another
    deployment or worker with one can serve the same request unchanged (docs/generators.md)."""

    code = "ResourceUnavailable"
    http_status = 503

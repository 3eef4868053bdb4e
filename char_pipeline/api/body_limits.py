"""Request bodies have a byte limit per route, enforced while they arrive.

One client sending 47 MB of JSON used to be parsed whole before its 422, stalling every other
client for seconds. Now each route has a limit sized for its largest legal request; a body over
it is answered 413 (the error envelope) as soon as its Content-Length says so, or as soon as
the streamed bytes pass the limit — never buffered whole. The counting is Starlette's own
``RequestBodyLimitMiddleware`` (FastAPI's per-route ``max_body_size`` uses it too); this module
only chooses the limit for each route from the settings, answers an oversized Content-Length
with the envelope, and writes the limits into the OpenAPI document.

The large JSON routes also parse off the event loop (``json_body``): pydantic's JSON parser in
a worker thread, 3× faster than ``json.loads`` + validation on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from char_pipeline.api.errors import payload_too_large
from char_pipeline.engine.controls import Z_DIM
from char_pipeline.settings import Settings

KIB = 1024
MIB = 1024 * KIB
DEFAULT_LIMIT = 64 * KIB  # any route not listed below (none of them takes a body)
SMALL_JSON_LIMIT = 1 * MIB  # one frame, one pose, one prompt: far below this
# A float of a z vector written with full precision ("-0.12345678901234567,") is ≤ 24 bytes.
BYTES_PER_FLOAT = 24
BATCH_VIDEOS = 4  # a batch body may carry this many longest-allowed videos' controls
BODY_METHODS = ("POST", "PUT", "PATCH")


def route_limits(settings: Settings) -> dict[tuple[str, str], int]:
    """(method, path) → the largest body that route accepts, in bytes."""
    video = settings.max_video_frames * Z_DIM * BYTES_PER_FLOAT + 64 * KIB
    return {
        ("POST", "/v1/reference-image"): settings.max_image_bytes + MIB,  # + form fields
        ("POST", "/v1/control/pose"): SMALL_JSON_LIMIT,
        ("POST", "/v1/control/text"): SMALL_JSON_LIMIT,
        ("POST", "/v1/control/latent"): DEFAULT_LIMIT,
        ("POST", "/v1/control/clip"): 8 * MIB + 64 * KIB,  # a BVH file's text
        ("POST", "/v1/generate/frame"): SMALL_JSON_LIMIT,
        ("POST", "/v1/generate/video"): video,
        ("POST", "/v1/generate/nerf"): SMALL_JSON_LIMIT,
        ("POST", "/v1/batch/video"): BATCH_VIDEOS * video,
        # The predictions door's image may come inline as a data URI (base64: 4/3 the bytes).
        ("POST", "/api/v3/wavespeed-ai/instant-character"): settings.max_image_bytes * 4 // 3
        + 64 * KIB,
    }


class BodyLimits:
    """Per-route body limits around the whole app (before routing, auth and parsing)."""

    def __init__(self, app: ASGIApp, limits: dict[tuple[str, str], int]) -> None:
        self.app = app
        self.limits = limits
        self.limited = {
            limit: RequestBodyLimitMiddleware(app, max_body_size=limit)
            for limit in {*limits.values(), DEFAULT_LIMIT}
        }

    def limit_for(self, method: str, path: str) -> int:
        return self.limits.get((method, path.rstrip("/") or "/"), DEFAULT_LIMIT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Known too large before a byte is read: answer now, in the envelope.
            await payload_too_large(limit, int(declared))(scope, receive, send)
            return
        await self.limited[limit](scope, receive, send)


def document_limits(schema: dict, limits: dict[tuple[str, str], int]) -> dict:
    """Each body-taking operation says its limit (x-max-body-bytes) and its 413."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method.upper() not in BODY_METHODS:
                continue
            limit = limits.get((method.upper(), path), DEFAULT_LIMIT)
            operation["x-max-body-bytes"] = limit
            operation.setdefault("responses", {})["413"] = {
                "description": f"Payload too large: the body is over {limit:,} bytes "
                "(answered as soon as that is known, in the error envelope)."
            }
    return schema


Model = TypeVar("Model", bound=BaseModel)


def json_body(model: type[Model]) -> Callable[[Request], Any]:
    """A dependency that parses and validates ``model`` in a worker thread.

    The body is already bounded by ``BodyLimits``; pydantic's Rust parser holds the GIL for
    its one call, so the loop waits at most that call (~20 ms for 3,000 frames) instead of
    ``json.loads`` plus validation (~70 ms) on the loop itself.
    """

    async def parse(request: Request) -> Model:
        raw = await request.body()
        try:
            return await anyio.to_thread.run_sync(model.model_validate_json, raw)
        except ValidationError as exc:
            errors = [
                {**error, "loc": ("body", *error.get("loc", ()))}
                for error in exc.errors(include_url=False)
            ]
            raise RequestValidationError(errors, body=raw) from None

    return parse


def add_models(schema: dict, models: list[type[BaseModel]]) -> dict:
    """Put the schemas of ``json_body`` models into components (FastAPI sees no body param)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in model_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, model_schema)
    return schema


def request_body_schema(model: type[BaseModel]) -> dict:
    """openapi_extra for a route that parses its body with ``json_body``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }

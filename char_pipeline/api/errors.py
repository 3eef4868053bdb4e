"""Every error leaves the API in the seed's envelope: {"error": {code, message, details}}."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from char_pipeline.engine.errors import CharPipelineError

log = logging.getLogger("char_pipeline.api")

STATUS_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "UnprocessableEntity",
    429: "RateLimitExceeded",
    500: "InternalError",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "InternalError")
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def envelope(
    status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or {}}},
        headers=headers,
    )


def payload_too_large(limit: int, size: int | None = None) -> JSONResponse:
    """413 for a body over its route's limit: declared too large (``size``, answered before a
    byte is read) or counted past the limit while it streamed in."""
    details: dict[str, Any] = {"max_bytes": limit}
    if size is not None:
        details["content_length"] = size
    message = f"The request body is larger than this endpoint's limit of {limit:,} bytes."
    # The client may still be sending; closing tells it to stop.
    return envelope(413, "PayloadTooLarge", message, details, headers={"Connection": "close"})


def _line_column(text: str, index: int) -> dict[str, int]:
    line = text.count("\n", 0, index) + 1
    return {"line": line, "column": index - (text.rfind("\n", 0, index) + 1) + 1}


def _deepest_point(text: str) -> tuple[int, int]:
    """The deepest nesting of ``[``/``{`` outside strings, and where it is first reached."""
    depth = deepest = where = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, where = depth, index
        elif char in "]}":
            depth -= 1
    return deepest, where


def unparsable_body(body: bytes) -> dict:
    """Where and why a body is not JSON: line/column (or byte offset) and the reason.

    The seed promises the position; the decoders know it, FastAPI's generic 400 drops it.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {"byte_offset": exc.start, "reason": f"invalid UTF-8 ({exc.reason})"}
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return {"line": exc.lineno, "column": exc.colno, "reason": exc.msg}
    except RecursionError:
        deepest, index = _deepest_point(text)
        return {
            **_line_column(text, index),
            "reason": f"nested {deepest} levels deep; the parser allows about "
            f"{sys.getrecursionlimit()}",
        }
    return {}


FASTAPI_PARSE_ERROR = "There was an error parsing the body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(CharPipelineError)
    async def engine_error(_request: Request, exc: CharPipelineError) -> JSONResponse:
        details = {k: v for k, v in exc.details.items() if v is not None}
        return envelope(exc.http_status, exc.code, exc.message, details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            body = await request.body()
            return envelope(
                400,
                "BadRequest",
                "Request body could not be parsed as JSON.",
                unparsable_body(body),
            )
        problems = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
                "message": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in errors
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
        return envelope(
            422,
            "UnprocessableEntity",
            f"Request validation failed: {summary}",
            {"errors": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_PARSE_ERROR:
            # FastAPI's answer to bodies its JSON step could not even decode (invalid UTF-8,
            # nesting past the recursion limit): say where and why, like any other parse error.
            details = unparsable_body(await request.body())
            return envelope(400, "BadRequest", "Request body could not be parsed as JSON.", details)
        message = (
            exc.detail
            if isinstance(exc.detail, str)
            else STATUS_CODES.get(exc.status_code, "Error")
        )
        if exc.status_code == 413:
            # Starlette's body limit counted past the route's limit while the body streamed in.
            from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

            limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            if isinstance(limit, int):
                return payload_too_large(limit)
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint."
        return envelope(
            exc.status_code,
            STATUS_CODES.get(exc.status_code, "BadRequest"),
            message,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unhandled error", exc_info=exc)
        return envelope(500, "InternalError", "Server-side error — please retry later.")

"""The OpenAPI document tells the truth about errors: every status a route can answer, each in
the error envelope, with the rate-limit headers where they are sent.

What a route can answer follows from what it depends on, so it is read off the routes rather
than repeated on each: an API key (401, and 403 for its scope, 429 with Retry-After), inputs
(422), a body (400 unreadable, 413 too large); what only the route knows (404 for references
and jobs, 409) is given on the route with ``errors(...)``. Generated clients get error types,
and the schemathesis test (tests/api/test_openapi.py) holds the document to the answers.
"""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

ERROR_SCHEMA = {
    "title": "ErrorEnvelope",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable error code, e.g. NotFound."},
                "message": {"type": "string", "description": "For the person reading it."},
                "details": {"type": "object", "description": "What a client can act on."},
            },
        }
    },
}
ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}

DESCRIPTIONS = {
    400: "Bad request: the body or a parameter cannot be read (malformed JSON, bad upload, bad cursor).",
    401: "Missing, invalid or revoked API key.",
    403: "The API key lacks the scope this route needs.",
    404: "No such object for this account (another account's objects are not found either).",
    409: "Conflict: the object's state does not allow this (or an Idempotency-Key is in use).",
    413: "Payload too large for this route (x-max-body-bytes).",
    422: "The input is well-formed but not valid (field errors in details).",
    429: "Rate limit exceeded; retry after Retry-After seconds.",
    500: "Internal error; the message names its cause.",
}

RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per window in this route's bucket.",
    "X-RateLimit-Remaining": "Requests left in the tightest window.",
    "X-RateLimit-Reset": "Unix time at which that window has room again.",
    "X-RateLimit-Bucket": "standard, or job_reads for GET /v1/jobs…",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the statuses only a route itself knows it answers."""
    return {status: {"description": DESCRIPTIONS[status]} for status in statuses}


def _calls(dependant: Dependant) -> list[Any]:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found.extend(_calls(sub))
    return found


def _route_facts(route: APIRoute) -> dict[str, bool]:
    calls = _calls(route.dependant)
    return {
        "authenticated": any(hasattr(call, "rate_limit_bucket") for call in calls),
        "scoped": any(hasattr(call, "required_scope") for call in calls),
    }


# The predictions door's errors (seeds 003/004): WaveSpeed's envelope with no data.
WAVESPEED_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "data"],
    "properties": {
        "code": {"type": "integer", "description": "The HTTP status."},
        "message": {"type": "string", "description": "What is wrong, naming the field."},
        "data": {"type": "null"},
    },
}


def document_errors(schema: dict, routes: list) -> dict:
    """Add each operation's error statuses (envelope schema) and its rate-limit headers.

    ``routes``: the API routes (the routers' own: FastAPI's app.routes holds wrappers of
    included routers, not their routes)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = ERROR_SCHEMA
    schema["components"]["schemas"]["WaveSpeedError"] = WAVESPEED_ERROR_SCHEMA
    schemes = schema["components"].setdefault("securitySchemes", {})
    schemes["ApiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <API key> (char-pipeline keys create).",
    }
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        facts = _route_facts(route)
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            statuses.add(500)
            if facts["authenticated"]:
                statuses |= {401, 429}
                operation["security"] = [{"ApiKey": []}]
            if facts["scoped"]:
                statuses.add(403)
            if operation.get("parameters") or "requestBody" in operation:
                statuses.add(422)
            if "requestBody" in operation:
                statuses |= {400, 413}
            # A door with its own error body (WaveSpeed's {code, message, data}) names its
            # schema; the errors answered before the route runs keep the v1 envelope.
            own = operation.pop("x-error-schema", None)
            error_schema = (
                {"oneOf": [ENVELOPE_REF, {"$ref": f"#/components/schemas/{own}"}]}
                if own
                else ENVELOPE_REF
            )
            for status in sorted(statuses):
                entry = responses.setdefault(str(status), {})
                entry["description"] = entry.get("description") or DESCRIPTIONS[status]
                entry["content"] = {"application/json": {"schema": error_schema}}
                if status == 429:
                    entry["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying.",
                            "schema": {"type": "integer"},
                        }
                    }
            if facts["authenticated"]:
                for code, entry in responses.items():
                    if code == "401":
                        continue  # answered before the key is known: no rate-limit headers
                    headers = entry.setdefault("headers", {})
                    for name, description in RATE_HEADERS.items():
                        headers.setdefault(
                            name,
                            {
                                "description": description,
                                "schema": {
                                    "type": "string" if name == "X-RateLimit-Bucket" else "integer"
                                },
                            },
                        )
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    return schema

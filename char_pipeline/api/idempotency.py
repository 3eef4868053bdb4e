"""Idempotency-Key on POSTs that create work: a retry gets the original answer.

Same key + same request → the stored response (same job); same key + different request →
422; a second request while the first is still running → 409 — unless the first one's API
process is gone or its claim outlived CHAR_IDEMPOTENCY_LEASE_SECONDS: then the retry runs.
Keys are per API key and expire after 24 hours.
"""

from __future__ import annotations

import hashlib
import json

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from char_pipeline.api.deps import AppState
from char_pipeline.api.errors import ApiError

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
REPLAYED_HEADERS = ("etag", "location")


def request_fingerprint(request: Request, body: BaseModel) -> str:
    """What makes two requests 'the same': path, query, routing headers and the parsed body."""
    digest = hashlib.sha256()
    digest.update(request.url.path.encode() + b"?" + str(request.url.query).encode() + b"\n")
    for header in ("x-gpu-type", "x-instance-count"):
        digest.update(request.headers.get(header, "").encode() + b"\n")
    digest.update(body.model_dump_json(by_alias=True).encode())
    return digest.hexdigest()


class Idempotency:
    def __init__(self, state: AppState, key_id: str, request: Request, body: BaseModel) -> None:
        self.state, self.key_id = state, key_id
        self.key = request.headers.get("idempotency-key")
        self.fingerprint = request_fingerprint(request, body) if self.key else ""

    def run(self, handler) -> Response:
        """Answer from the stored response, or run ``handler`` once and store its answer."""
        replayed = self.replay()
        if replayed is not None:
            return replayed
        try:
            response = handler()
        except BaseException:
            self.abandon()
            raise
        return self.store(response)

    def replay(self) -> Response | None:
        """The stored answer for a repeated key, or None when this request should run."""
        if not self.key:
            return None
        if len(self.key) > 255:
            raise ApiError(400, "Idempotency-Key must be at most 255 characters.")
        row = self.state.jobs.idempotency_begin(
            self.key_id,
            self.key,
            self.fingerprint,
            IDEMPOTENCY_TTL_SECONDS,
            lease_seconds=self.state.settings.idempotency_lease_seconds,
        )
        if row is None:
            return None
        if row["request_hash"] != self.fingerprint:
            raise ApiError(
                422,
                "This Idempotency-Key was used with a different request.",
                details={"idempotency_key": self.key},
            )
        if row["state"] != "done":
            raise ApiError(
                409,
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                code="Conflict",
                details={"idempotency_key": self.key},
            )
        headers = json.loads(row["headers"] or "{}")
        headers["Idempotent-Replayed"] = "true"
        return Response(
            row["response"],
            status_code=row["status_code"],
            headers=headers,
            media_type="application/json",
        )

    def store(self, response: Response) -> Response:
        if self.key:
            if isinstance(response, JSONResponse) and response.status_code < 500:
                headers = {
                    k: v for k, v in response.headers.items() if k.lower() in REPLAYED_HEADERS
                }
                self.state.jobs.idempotency_finish(
                    self.key_id, self.key, response.status_code, response.body.decode(), headers
                )
            else:
                self.state.jobs.idempotency_abandon(self.key_id, self.key)
        return response

    def abandon(self) -> None:
        if self.key:
            self.state.jobs.idempotency_abandon(self.key_id, self.key)

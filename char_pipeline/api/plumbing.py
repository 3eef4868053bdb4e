"""What every write route shares, as dependencies: the compute headers, the ETag/304 answer,
idempotency, and the one 202 for accepted jobs. A new route is its schema and a service call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from char_pipeline.api.deps import AppState, app_state, require_scope
from char_pipeline.api.idempotency import Idempotency
from char_pipeline.jobstore import ApiKey
from char_pipeline.services.compute import gpu_settings


@dataclass(frozen=True)
class Compute:
    """The seed's compute headers, checked: X-GPU-Type and X-Instance-Count."""

    gpu: str
    count: int


def compute_headers(
    x_gpu_type: str | None = Header(None, description="v100 (default), t4 or a100"),
    x_instance_count: str | None = Header(None, description="1 to 4 (default 1)"),
) -> Compute:
    return Compute(*gpu_settings(x_gpu_type, x_instance_count))


def etag_matches(if_none_match: str | None, quoted_etag: str) -> bool:
    """True when an If-None-Match header names this (quoted) ETag: answer 304."""
    return bool(if_none_match) and quoted_etag in [tag.strip() for tag in if_none_match.split(",")]


@dataclass(frozen=True)
class Conditional:
    """If-None-Match against the ETag a route computed: a 304 instead of the work."""

    if_none_match: str | None

    def not_modified(self, etag: str) -> Response | None:
        quoted = f'"{etag}"'
        if etag_matches(self.if_none_match, quoted):
            return Response(status_code=304, headers={"ETag": quoted})
        return None


def conditional(if_none_match: str | None = Header(None)) -> Conditional:
    return Conditional(if_none_match)


WRITE = require_scope("generate:write")


@dataclass
class Idempotent:
    """Runs a route's handler once per Idempotency-Key (the key's record, not the route)."""

    state: AppState
    key: ApiKey
    request: Request

    def run(self, body: BaseModel, handler) -> Response:
        return Idempotency(self.state, self.key.id, self.request, body).run(handler)


def idempotent(
    request: Request, key: ApiKey = Depends(WRITE), state: AppState = Depends(app_state)
) -> Idempotent:
    return Idempotent(state.as_account(key.account_id), key, request)


ComputeHeaders = Annotated[Compute, Depends(compute_headers)]
IfNoneMatch = Annotated[Conditional, Depends(conditional)]
Once = Annotated[Idempotent, Depends(idempotent)]


def accepted(state: AppState, job_id: str, headers: dict[str, str], **extra) -> JSONResponse:
    """202 for async work: its id, status URL and Location (the seed's §9.1)."""
    location = f"/v1/jobs/{job_id}"
    return JSONResponse(
        {"job_id": job_id, "status_url": f"{state.settings.base_url}{location}", **extra},
        status_code=202,
        headers={**headers, "Location": location},
    )

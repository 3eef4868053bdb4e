"""Request dependencies: the app's shared state, API-key auth with scopes, rate limits."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from char_pipeline.api.errors import ApiError
from char_pipeline.jobstore import ApiKey
from char_pipeline.services.context import ServiceContext
from char_pipeline.settings import Settings


@dataclass
class AppState(ServiceContext):
    """The services' context plus what only the HTTP door needs: its rate limiter.

    Built from settings alone (never from definitions.py): the API keeps answering, and
    /readyz explains, when the Dagster code cannot load.
    """

    limiter: MovingWindowRateLimiter | None = None
    standard_limit: RateLimitItem | None = None
    burst_limit: RateLimitItem | None = None
    job_reads_limit: RateLimitItem | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        return super().from_settings(
            settings,
            limiter=MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage)),
            standard_limit=parse(settings.rate_limit),
            burst_limit=parse(settings.rate_limit_burst),
            job_reads_limit=parse(settings.rate_limit_job_reads),
        )

    def limits_for(self, bucket: str) -> list[RateLimitItem]:
        """The limits a request of this bucket counts against, the documented one first."""
        if bucket == JOB_READS:
            return [self.job_reads_limit]
        return [self.standard_limit, self.burst_limit]


STANDARD = "standard"
JOB_READS = "job_reads"  # GET /v1/jobs…: polling has its own budget


async def app_state(request: Request) -> AppState:
    return request.app.state.char


def _bearer_key(request: Request, state: AppState) -> ApiKey:
    """Bearer API key → the key's record.

    Async on purpose: the key lookup is one indexed read (~0.3 ms), cheaper inline than a
    hop through the thread pool, which dominated small requests.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "Missing API key: send 'Authorization: Bearer <API_KEY>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = state.jobs.verify_key(token.strip())
    if key is None:
        raise ApiError(401, "Invalid or revoked API key.", headers={"WWW-Authenticate": "Bearer"})
    return key


@functools.cache  # one dependency per bucket: FastAPI then runs it once per request
def authenticator(bucket: str = STANDARD) -> Callable[..., ApiKey]:
    """The key, then its rate limits in ``bucket``."""

    async def dependency(request: Request, state: AppState = Depends(app_state)) -> ApiKey:
        key = _bearer_key(request, state)
        _rate_limit(request, state, key.id, bucket)
        return key

    dependency.rate_limit_bucket = bucket  # read by api/openapi.py: 401 and 429 apply
    return dependency


def _rate_limit(request: Request, state: AppState, key_id: str, bucket: str) -> None:
    limiter = state.limiter
    limits = state.limits_for(bucket)
    allowed = True
    for limit in limits:  # stop at the first refusal: a refused request spends no other budget
        allowed = allowed and limiter.hit(limit, "key", bucket, key_id)
    stats = [limiter.get_window_stats(limit, "key", bucket, key_id) for limit in limits]
    binding = min(range(len(limits)), key=lambda i: stats[i].remaining)
    headers = {
        "X-RateLimit-Limit": str(limits[0].amount),
        "X-RateLimit-Remaining": str(max(0, stats[binding].remaining)),
        "X-RateLimit-Reset": str(math.ceil(stats[binding].reset_time)),
        "X-RateLimit-Bucket": bucket,
    }
    request.state.rate_limit_headers = headers
    if not allowed:
        exhausted = [i for i in range(len(limits)) if stats[i].remaining <= 0] or [binding]
        index = max(exhausted, key=lambda i: stats[i].reset_time)
        limit = limits[index]
        retry_after = max(1, math.ceil(stats[index].reset_time - time.time()))
        raise ApiError(
            429,
            f"Rate limit exceeded ({limit.amount} requests per {limit.multiples} {limit.GRANULARITY.name}); retry after {retry_after} s.",
            details={"limit": str(limit), "retry_after": retry_after},
            headers={**headers, "Retry-After": str(retry_after), "X-RateLimit-Remaining": "0"},
        )


def require_scope(scope: str, bucket: str = STANDARD) -> Callable[..., ApiKey]:
    authenticated = Depends(authenticator(bucket))

    async def dependency(key: ApiKey = authenticated) -> ApiKey:
        if scope not in key.scopes:
            raise ApiError(
                403,
                f"This API key lacks the '{scope}' scope.",
                details={"required_scope": scope, "key_scopes": list(key.scopes)},
            )
        return key

    dependency.required_scope = scope  # read by api/openapi.py: 403 applies
    return dependency


def account_state(scope: str, bucket: str = STANDARD) -> Callable[..., AppState]:
    """The app's state narrowed to the calling key's account (after auth and the scope check):
    the services then see that account's references and jobs only."""
    checked = require_scope(scope, bucket)

    async def dependency(
        key: ApiKey = Depends(checked), state: AppState = Depends(app_state)
    ) -> AppState:
        return state.as_account(key.account_id)

    return dependency

"""Request dependencies: the app's shared state, API-key auth with scopes, rate limits."""

from __future__ import annotations

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

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        return super().from_settings(
            settings,
            limiter=MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage)),
            standard_limit=parse(settings.rate_limit),
            burst_limit=parse(settings.rate_limit_burst),
        )


async def app_state(request: Request) -> AppState:
    return request.app.state.char


async def authenticate(request: Request, state: AppState = Depends(app_state)) -> ApiKey:
    """Bearer API key → the key's record, then the per-key rate limits.

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
    _rate_limit(request, state, key.id)
    return key


def _rate_limit(request: Request, state: AppState, key_id: str) -> None:
    limiter = state.limiter
    standard_limit, burst_limit = state.standard_limit, state.burst_limit
    allowed_standard = limiter.hit(standard_limit, "key", key_id)
    allowed_burst = allowed_standard and limiter.hit(burst_limit, "key", key_id)
    standard = limiter.get_window_stats(standard_limit, "key", key_id)
    burst = limiter.get_window_stats(burst_limit, "key", key_id)
    binding = burst if burst.remaining < standard.remaining else standard
    headers = {
        "X-RateLimit-Limit": str(standard_limit.amount),
        "X-RateLimit-Remaining": str(max(0, min(standard.remaining, burst.remaining))),
        "X-RateLimit-Reset": str(math.ceil(binding.reset_time)),
    }
    request.state.rate_limit_headers = headers
    if not (allowed_standard and allowed_burst):
        exceeded = standard if not allowed_standard else burst
        limit = standard_limit if not allowed_standard else burst_limit
        retry_after = max(1, math.ceil(exceeded.reset_time - time.time()))
        raise ApiError(
            429,
            f"Rate limit exceeded ({limit.amount} requests per {limit.multiples} {limit.GRANULARITY.name}); retry after {retry_after} s.",
            details={"limit": str(limit), "retry_after": retry_after},
            headers={**headers, "Retry-After": str(retry_after), "X-RateLimit-Remaining": "0"},
        )


def require_scope(scope: str) -> Callable[..., ApiKey]:
    async def dependency(key: ApiKey = Depends(authenticate)) -> ApiKey:
        if scope not in key.scopes:
            raise ApiError(
                403,
                f"This API key lacks the '{scope}' scope.",
                details={"required_scope": scope, "key_scopes": list(key.scopes)},
            )
        return key

    return dependency

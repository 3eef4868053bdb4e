"""Signed, expiring download links for artifacts (or presigned URLs when storage is S3).

Shared by the API (responses, job views) and the Dagster side (webhook payloads), so a
callback carries the same links a poll would.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

from char_pipeline.storage import ArtifactStore


def signature(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(store: ArtifactStore, secret: bytes, base_url: str, key: str, expires: int) -> str:
    """A link valid until ``expires`` (unix seconds)."""
    if not store.is_local:
        fs = store.path(key).fs
        try:
            return fs.sign(store.path(key).path, expiration=max(1, expires - int(time.time())))
        except NotImplementedError:
            pass
    return f"{base_url}/v1/files/{quote(key)}?expires={expires}&signature={signature(secret, key, expires)}"


def verify(secret: bytes, key: str, expires: int, given: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged link's
    # signature may have any); found by the schemathesis test.
    expected = signature(secret, key, expires).encode()
    return (
        hmac.compare_digest(expected, given.encode("utf-8", "replace")) and expires >= time.time()
    )


DEFAULT_URL_TTL = 7 * 24 * 3600


def iso_from_unix(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def present_result(
    result: dict, *, store: ArtifactStore, secret: bytes, base_url: str, url_ttl: int | None
) -> dict:
    """A stored result (artifact keys) as clients see it (fresh signed URLs, no keys)."""
    response = {k: v for k, v in result.items() if not k.endswith("_key")}
    expires = int(time.time()) + int(url_ttl or DEFAULT_URL_TTL)
    for field in ("image", "video", "mask", "model"):
        key = result.get(f"{field}_key")
        if key:
            response[f"{field}_url"] = signed_url(store, secret, base_url, key, expires)
            response["expires_at"] = iso_from_unix(expires)
    return response


def completion_payload(
    job_id: str,
    result: dict,
    *,
    store: ArtifactStore,
    secret: bytes,
    base_url: str,
    url_ttl: int | None,
) -> dict:
    """The webhook body of a completed job: {job_id, status, result} with result as the sync response."""
    presented = present_result(
        result, store=store, secret=secret, base_url=base_url, url_ttl=url_ttl
    )
    return {"job_id": job_id, "status": "completed", "result": presented}

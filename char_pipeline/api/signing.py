"""Signed, expiring download links for artifacts (or presigned URLs when storage is S3)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

from char_pipeline.resources.storage import ArtifactStore


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
    return hmac.compare_digest(signature(secret, key, expires), given) and expires >= time.time()

"""The scale-out services every project machine runs (PostgreSQL, Redis): reachable or not.

Tests that need one skip with the reason when it is absent — and fail under CI=true,
where the service must be there.
"""

from __future__ import annotations

import os
import socket

import pytest


def require_service(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " — CI machines must run it.")
        pytest.skip(message)


POSTGRES_URL = os.environ.get(
    "CHAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CHAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

"""The scale-out services every project machine runs (PostgreSQL, Redis): reachable or not.

Tests that need one skip with the reason when it is absent — and fail under CI=true,
where the service must be there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator

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
RABBITMQ_URL = os.environ.get("CHAR_TEST_RABBITMQ_URL", "pyamqp://guest:guest@127.0.0.1:5672//")


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL (Dagster's tables live in its
    default schema), dropped after; yields its postgresql:// URL."""
    import sqlalchemy as sa

    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@contextlib.contextmanager
def moto_s3(bucket: str | None = None) -> Iterator[str]:
    """An S3-compatible server (moto) on loopback, stopped after; yields its endpoint URL.
    Its clients read AWS_* credentials from the environment (any values do)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        if bucket:
            import boto3

            client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()

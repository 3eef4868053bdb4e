"""Durable state behind the API: API keys, async jobs and the generate-response cache.

SQLAlchemy Core on SQLite by default (one file in the data root, WAL mode so several API
workers and Dagster runs can share it) or any SQLAlchemy URL (PostgreSQL) by setting.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("message", sa.String(500), nullable=True),
    sa.Column("reference_image_id", sa.String(80), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("api_key_id", sa.String(40), nullable=True),
    sa.Column("callback_url", sa.String(2000), nullable=True),
    sa.Column("gpu_type", sa.String(10), nullable=False, default="v100"),
    sa.Column("instance_count", sa.Integer, nullable=False, default=1),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

response_cache = sa.Table(
    "response_cache",
    metadata,
    sa.Column("etag", sa.String(80), primary_key=True),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

SCOPES = ("reference:read", "control:write", "generate:write")
JOB_STATUSES = ("pending", "processing", "completed", "failed")


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "scopes": list(self.scopes)}


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    progress: float
    message: str | None
    reference_image_id: str
    request: dict
    result: dict | None
    error: dict | None
    api_key_id: str | None
    callback_url: str | None
    gpu_type: str
    instance_count: int
    run_id: str | None
    created_at: str
    updated_at: str
    seq: int


def _enable_sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class JobStore:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _enable_sqlite_wal)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)

    # -- API keys ---------------------------------------------------------------------

    def create_key(self, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiKey, str]:
        """Create a key; the plaintext is returned once and only its hash is stored."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(
                f"Unknown or empty scopes {unknown or scopes}; choose from {', '.join(SCOPES)}."
            )
        plaintext = "sk_live_" + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        row = {
            "id": key_id,
            "name": name,
            "prefix": plaintext[:12],
            "key_hash": hash_key(plaintext),
            "scopes": ",".join(sorted(set(scopes))),
            "created_at": now(),
            "revoked_at": None,
        }
        with self.engine.begin() as connection:
            connection.execute(api_keys.insert().values(**row))
        return self._key(row), plaintext

    @staticmethod
    def _key(row) -> ApiKey:
        row = dict(row._mapping) if hasattr(row, "_mapping") else row
        return ApiKey(
            id=row["id"],
            name=row["name"],
            prefix=row["prefix"],
            scopes=tuple(s for s in row["scopes"].split(",") if s),
            created_at=iso(row["created_at"]),
            revoked_at=iso(row["revoked_at"]),
        )

    def verify_key(self, plaintext: str) -> ApiKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(api_keys).where(api_keys.c.key_hash == hash_key(plaintext))
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return self._key(row)

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [self._key(row) for row in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
        return result.rowcount == 1

    # -- jobs -------------------------------------------------------------------------

    def create_job(
        self,
        *,
        kind: str,
        reference_image_id: str,
        request: dict,
        api_key_id: str | None = None,
        callback_url: str | None = None,
        gpu_type: str = "v100",
        instance_count: int = 1,
        job_id: str | None = None,
    ) -> Job:
        moment = now()
        row = {
            "id": job_id or "job_" + secrets.token_hex(8),
            "kind": kind,
            "status": "pending",
            "progress": 0.0,
            "message": "Queued",
            "reference_image_id": reference_image_id,
            "request": json.dumps(request),
            "api_key_id": api_key_id,
            "callback_url": callback_url,
            "gpu_type": gpu_type,
            "instance_count": instance_count,
            "created_at": moment,
            "updated_at": moment,
        }
        with self.engine.begin() as connection:
            connection.execute(jobs.insert().values(**row))
        job = self.get_job(row["id"])
        assert job is not None
        return job

    @staticmethod
    def _job(row) -> Job:
        m = row._mapping
        return Job(
            id=m["id"],
            kind=m["kind"],
            status=m["status"],
            progress=float(m["progress"]),
            message=m["message"],
            reference_image_id=m["reference_image_id"],
            request=json.loads(m["request"]),
            result=json.loads(m["result"]) if m["result"] else None,
            error=json.loads(m["error"]) if m["error"] else None,
            api_key_id=m["api_key_id"],
            callback_url=m["callback_url"],
            gpu_type=m["gpu_type"],
            instance_count=int(m["instance_count"]),
            run_id=m["run_id"],
            created_at=iso(m["created_at"]),
            updated_at=iso(m["updated_at"]),
            seq=int(m["seq"]),
        )

    def get_job(self, job_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else self._job(row)

    def jobs_after(self, seq: int, limit: int = 100) -> list[Job]:
        """Jobs created after sequence number ``seq``, oldest first (the sensor's cursor)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(jobs).where(jobs.c.seq > seq).order_by(jobs.c.seq).limit(limit)
            ).all()
        return [self._job(row) for row in rows]

    def _update(self, job_id: str, *, only_if_open: bool = True, **values) -> bool:
        values["updated_at"] = now()
        condition = [jobs.c.id == job_id]
        if only_if_open:
            condition.append(jobs.c.status.in_(("pending", "processing")))
        with self.engine.begin() as connection:
            result = connection.execute(jobs.update().where(*condition).values(**values))
        return result.rowcount == 1

    def start_job(self, job_id: str, run_id: str) -> bool:
        return self._update(job_id, status="processing", run_id=run_id, message="Rendering started")

    def update_progress(self, job_id: str, progress: float, message: str) -> bool:
        return self._update(
            job_id, status="processing", progress=round(float(progress), 1), message=message
        )

    def complete_job(self, job_id: str, result: dict) -> bool:
        return self._update(
            job_id,
            status="completed",
            progress=100.0,
            message="Completed",
            result=json.dumps(result),
        )

    def fail_job(self, job_id: str, code: str, message: str, details: dict | None = None) -> bool:
        error = {"code": code, "message": message, "details": details or {}}
        return self._update(job_id, status="failed", message=message[:500], error=json.dumps(error))

    # -- response cache ---------------------------------------------------------------

    def cache_get(self, etag: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(response_cache).where(response_cache.c.etag == etag)
            ).first()
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if expires <= now():
            return None
        return json.loads(row.response)

    def cache_put(self, etag: str, response: dict, ttl_seconds: int) -> None:
        moment = now()
        values = {
            "response": json.dumps(response),
            "created_at": moment,
            "expires_at": moment + timedelta(seconds=ttl_seconds),
        }
        with self.engine.begin() as connection:
            updated = connection.execute(
                response_cache.update().where(response_cache.c.etag == etag).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(response_cache.insert().values(etag=etag, **values))


@functools.cache
def open_job_store(url: str) -> JobStore:
    """One JobStore (and connection pool) per URL per process."""
    return JobStore(url)

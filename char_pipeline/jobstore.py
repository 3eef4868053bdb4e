"""Durable state behind the API: API keys, async jobs and the generate-response cache.

SQLAlchemy Core on SQLite by default (one file in the data root, WAL mode so several API
workers and Dagster runs can share it) or any SQLAlchemy URL (PostgreSQL) by setting.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from char_pipeline.jobstate import OPEN, JobStatus, sources

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
    # Webhook signing secrets (Standard Webhooks 'whsec_…'); the previous one stays valid
    # while receivers rotate.
    sa.Column("webhook_secret", sa.String(80), nullable=True),
    sa.Column("webhook_secret_previous", sa.String(80), nullable=True),
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
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The outbox: one row per callback, written in the same transaction as the job's final
# status, so a crash can delay a webhook but never lose it.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(60), nullable=False, unique=True),
    sa.Column("job_id", sa.String(40), nullable=False, index=True),
    sa.Column("api_key_id", sa.String(40), nullable=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, delivered, failed, disabled
    sa.Column("attempt_count", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.Integer, nullable=False, index=True),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

# Endpoints that answered 410 Gone: no more callbacks to them for that key.
disabled_endpoints = sa.Table(
    "disabled_endpoints",
    metadata,
    sa.Column("api_key_id", sa.String(40), primary_key=True),
    sa.Column("url", sa.String(2000), primary_key=True),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("api_key_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # in_progress, done
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("headers", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # While in progress: which process runs the request, and until when its claim holds.
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
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
JOB_STATUSES = tuple(str(status) for status in JobStatus)


@functools.cache
def _owner_of(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"


def process_owner() -> str:
    """Who holds an in-progress idempotency claim: host, pid and a token for this process."""
    return _owner_of(os.getpid())


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _claim_is_dead(owner: str | None, lease_expires_at: datetime | None, moment: datetime) -> bool:
    """An in-progress claim whose lease ran out, or whose process on this host is gone."""
    if lease_expires_at is None or _aware(lease_expires_at) <= moment:
        return True  # claims made before leases existed count as expired
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid))


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


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
    webhook_secret: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The key's public record; the webhook secret is shown only where it is created."""
        data = {k: v for k, v in self.__dict__.items() if k != "webhook_secret"}
        return {**data, "scopes": list(self.scopes)}


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
    attempts: int = 1


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
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Add nullable columns that newer versions introduced to tables made by older ones."""
        inspector = sa.inspect(self.engine)
        for table in metadata.sorted_tables:
            existing = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in existing:
                    continue
                kind = column.type.compile(dialect=self.engine.dialect)
                default = " DEFAULT 1" if column.name == "attempts" else ""
                with self.engine.begin() as connection:
                    connection.execute(
                        sa.text(
                            f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}"
                        )
                    )

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
            "webhook_secret": new_webhook_secret(),
            "webhook_secret_previous": None,
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
            webhook_secret=row.get("webhook_secret"),
        )

    def verify_key(self, plaintext: str) -> ApiKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(api_keys).where(api_keys.c.key_hash == hash_key(plaintext))
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return self._key(row)

    def get_key(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        return None if row is None else self._key(row)

    def rotate_webhook_secret(self, key_id: str) -> str | None:
        """A new signing secret; the old one keeps signing too until the next rotation."""
        secret = new_webhook_secret()
        with self.engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id)
                .values(webhook_secret_previous=api_keys.c.webhook_secret, webhook_secret=secret)
            )
        return secret if result.rowcount == 1 else None

    def webhook_secrets(self, key_id: str) -> list[str]:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(api_keys.c.webhook_secret, api_keys.c.webhook_secret_previous).where(
                    api_keys.c.id == key_id
                )
            ).first()
        return [secret for secret in (row or ()) if secret]

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
        (job,) = self.create_jobs(
            [
                {
                    "kind": kind,
                    "reference_image_id": reference_image_id,
                    "request": request,
                    "api_key_id": api_key_id,
                    "callback_url": callback_url,
                    "gpu_type": gpu_type,
                    "instance_count": instance_count,
                    "job_id": job_id,
                }
            ]
        )
        return job

    def create_jobs(self, specs: list[dict]) -> list[Job]:
        """Create several jobs in one transaction: a sensor sees all of them or none."""
        moment = now()
        rows = [
            {
                "id": spec.get("job_id") or "job_" + secrets.token_hex(8),
                "kind": spec["kind"],
                "status": str(JobStatus.PENDING),
                "progress": 0.0,
                "message": "Queued",
                "reference_image_id": spec["reference_image_id"],
                "request": json.dumps(spec["request"]),
                "api_key_id": spec.get("api_key_id"),
                "callback_url": spec.get("callback_url"),
                "gpu_type": spec.get("gpu_type", "v100"),
                "instance_count": spec.get("instance_count", 1),
                "attempts": 1,
                "created_at": moment,
                "updated_at": moment,
            }
            for spec in specs
        ]
        with self.engine.begin() as connection:
            for row in rows:
                connection.execute(jobs.insert().values(**row))
        return [self.get_job(row["id"]) for row in rows]

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
            attempts=int(m["attempts"] or 1),
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

    @staticmethod
    def _transition(
        connection,
        job_id: str,
        target: JobStatus,
        values: dict,
        narrowed_to: tuple[str, ...] | None = None,
    ) -> bool:
        """The one place a job's status changes: only from a status ``jobstate`` allows
        (optionally narrowed), atomically; False when the job was not in such a status."""
        result = connection.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.status.in_(sources(target, narrowed_to)))
            .values(status=str(target), updated_at=now(), **values)
        )
        return result.rowcount == 1

    def _update(self, job_id: str, target: JobStatus, **values) -> bool:
        with self.engine.begin() as connection:
            return self._transition(connection, job_id, target, values)

    def start_job(self, job_id: str, run_id: str) -> bool:
        return self._update(
            job_id, JobStatus.PROCESSING, run_id=run_id, message="Rendering started"
        )

    def update_progress(self, job_id: str, progress: float, message: str) -> bool:
        return self._update(
            job_id, JobStatus.PROCESSING, progress=round(float(progress), 1), message=message
        )

    def complete_job(self, job_id: str, result: dict, callback_payload: dict | None = None) -> bool:
        """Mark the job completed and, in the same transaction, queue its callback."""
        values = {"progress": 100.0, "message": "Completed", "result": json.dumps(result)}
        return self._finish(job_id, JobStatus.COMPLETED, values, callback_payload)

    def fail_job(
        self,
        job_id: str,
        code: str,
        message: str,
        details: dict | None = None,
        from_statuses: tuple[str, ...] | None = None,
    ) -> bool:
        """Mark the job failed with an error object and, in the same transaction, queue its callback.

        ``from_statuses`` narrows which open states may fail (the launch watchdog fails only
        jobs still pending, never one whose run has just started).
        """
        error = {"code": code, "message": message, "details": details or {}}
        values = {"message": message[:500], "error": json.dumps(error)}
        payload = {"job_id": job_id, "status": str(JobStatus.FAILED), "error": error}
        return self._finish(job_id, JobStatus.FAILED, values, payload, from_statuses)

    def _finish(
        self,
        job_id: str,
        target: JobStatus,
        values: dict,
        callback_payload: dict | None,
        from_statuses: tuple[str, ...] | None = None,
    ) -> bool:
        moment = now()
        with self.engine.begin() as connection:
            if not self._transition(connection, job_id, target, values, from_statuses):
                return False
            job = connection.execute(
                sa.select(jobs.c.callback_url, jobs.c.api_key_id).where(jobs.c.id == job_id)
            ).first()
            if job.callback_url and callback_payload is not None:
                disabled = connection.execute(
                    sa.select(disabled_endpoints.c.url).where(
                        disabled_endpoints.c.api_key_id == (job.api_key_id or ""),
                        disabled_endpoints.c.url == job.callback_url,
                    )
                ).first()
                connection.execute(
                    deliveries.insert().values(
                        webhook_id="msg_" + secrets.token_hex(12),
                        job_id=job_id,
                        api_key_id=job.api_key_id,
                        url=job.callback_url,
                        payload=json.dumps(callback_payload, separators=(",", ":")),
                        status="disabled" if disabled else "pending",
                        attempt_count=0,
                        next_attempt_at=None if disabled else moment,
                        created_at=moment,
                        updated_at=moment,
                    )
                )
        return True

    def open_jobs(
        self,
        older_than_seconds: float,
        limit: int = 200,
        kinds: tuple[str, ...] = ("video",),
        statuses: tuple[str, ...] = tuple(str(s) for s in OPEN),
    ) -> list[Job]:
        """Open jobs not updated for a while: the reconciler's and the launch watchdog's worklist."""
        cutoff = now() - timedelta(seconds=older_than_seconds)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(jobs)
                .where(
                    jobs.c.kind.in_(kinds),
                    jobs.c.status.in_(statuses),
                    jobs.c.updated_at < cutoff,
                )
                .order_by(jobs.c.seq)
                .limit(limit)
            ).all()
        return [self._job(row) for row in rows]

    def retry_job(self, job_id: str, attempt: int) -> bool:
        return self._update(
            job_id,
            JobStatus.PENDING,
            progress=0.0,
            run_id=None,
            attempts=attempt,
            message=f"Retrying (attempt {attempt})",
        )

    # -- webhook deliveries -----------------------------------------------------------

    def claim_due_deliveries(self, limit: int, lease_seconds: float = 60.0) -> list[dict]:
        """Take up to ``limit`` due deliveries under a lease, so two senders never race."""
        moment = now()
        claimed = []
        with self.engine.begin() as connection:
            rows = connection.execute(
                sa.select(deliveries)
                .where(
                    deliveries.c.status == "pending",
                    deliveries.c.next_attempt_at <= moment,
                    sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < moment),
                )
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit)
            ).all()
            for row in rows:
                taken = connection.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.id == row.id,
                        sa.or_(
                            deliveries.c.lease_until.is_(None), deliveries.c.lease_until < moment
                        ),
                    )
                    .values(lease_until=moment + timedelta(seconds=lease_seconds))
                )
                if taken.rowcount == 1:
                    claimed.append(dict(row._mapping))
        return claimed

    def record_attempt(
        self,
        delivery_id: int,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
        outcome: str,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Log one attempt; ``outcome`` is delivered, retry, failed or disabled."""
        moment = now()
        status = "pending" if outcome == "retry" else outcome
        with self.engine.begin() as connection:
            connection.execute(
                delivery_attempts.insert().values(
                    delivery_id=delivery_id,
                    attempted_at=moment,
                    status_code=status_code,
                    error=(error or "")[:500] or None,
                    duration_ms=duration_ms,
                )
            )
            connection.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id)
                .values(
                    status=status,
                    attempt_count=deliveries.c.attempt_count + 1,
                    next_attempt_at=next_attempt_at if outcome == "retry" else None,
                    lease_until=None,
                    updated_at=moment,
                )
            )

    def disable_endpoint(self, api_key_id: str | None, url: str) -> None:
        with self.engine.begin() as connection:
            exists = connection.execute(
                sa.select(disabled_endpoints.c.url).where(
                    disabled_endpoints.c.api_key_id == (api_key_id or ""),
                    disabled_endpoints.c.url == url,
                )
            ).first()
            if not exists:
                connection.execute(
                    disabled_endpoints.insert().values(
                        api_key_id=api_key_id or "", url=url, disabled_at=now()
                    )
                )

    def deliveries_for_job(self, job_id: str) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(deliveries).where(deliveries.c.job_id == job_id).order_by(deliveries.c.id)
            ).all()
            views = []
            for row in rows:
                attempts = connection.execute(
                    sa.select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id == row.id)
                    .order_by(delivery_attempts.c.id)
                ).all()
                views.append(
                    {
                        "webhook_id": row.webhook_id,
                        "url": row.url,
                        "status": row.status,
                        "next_attempt_at": iso(row.next_attempt_at)
                        if row.status == "pending"
                        else None,
                        "attempts": [
                            {
                                "at": iso(a.attempted_at),
                                "status_code": a.status_code,
                                "error": a.error,
                                "duration_ms": a.duration_ms,
                            }
                            for a in attempts
                        ],
                    }
                )
        return views

    def delivery_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
            ).all()
        return {status: int(count) for status, count in rows}

    # -- idempotency ------------------------------------------------------------------

    def idempotency_begin(
        self,
        api_key_id: str,
        key: str,
        request_hash: str,
        ttl_seconds: int = 24 * 3600,
        lease_seconds: float = 600,
    ) -> dict | None:
        """Claim an Idempotency-Key. None: go ahead; else the stored row (state/response).

        An in-progress claim is a lease: when the process that made it is gone (same host,
        pid no longer alive — a crash or a kill), or the lease ran out (the request time
        limit), the claim is taken over and the retry runs, instead of answering 409 until
        the key expires.
        """
        moment = now()
        claim = {
            "request_hash": request_hash,
            "state": "in_progress",
            "created_at": moment,
            "owner": process_owner(),
            "lease_expires_at": moment + timedelta(seconds=lease_seconds),
        }
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(idempotency).where(
                    idempotency.c.api_key_id == api_key_id, idempotency.c.key == key
                )
            ).first()
            if row is not None:
                created = _aware(row.created_at)
                if created <= moment - timedelta(seconds=ttl_seconds):
                    connection.execute(
                        idempotency.delete().where(
                            idempotency.c.api_key_id == api_key_id, idempotency.c.key == key
                        )
                    )
                elif (
                    row.state == "in_progress"
                    and row.request_hash == request_hash
                    and _claim_is_dead(row.owner, row.lease_expires_at, moment)
                ):
                    taken = connection.execute(
                        idempotency.update()
                        .where(
                            idempotency.c.api_key_id == api_key_id,
                            idempotency.c.key == key,
                            idempotency.c.state == "in_progress",
                            # Only if nobody else took it over meanwhile.
                            idempotency.c.owner.is_(None)
                            if row.owner is None
                            else idempotency.c.owner == row.owner,
                        )
                        .values(**claim)
                    )
                    if taken.rowcount == 1:
                        return None
                    return {**dict(row._mapping), "owner": "another retry"}
                else:
                    return dict(row._mapping)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    idempotency.insert().values(api_key_id=api_key_id, key=key, **claim)
                )
        except sa.exc.IntegrityError:
            # Another request with the same key got there first.
            with self.engine.connect() as connection:
                row = connection.execute(
                    sa.select(idempotency).where(
                        idempotency.c.api_key_id == api_key_id, idempotency.c.key == key
                    )
                ).first()
            return (
                dict(row._mapping)
                if row is not None
                else {"state": "in_progress", "request_hash": request_hash}
            )
        return None

    def idempotency_finish(
        self, api_key_id: str, key: str, status_code: int, response: str, headers: dict
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                idempotency.update()
                .where(idempotency.c.api_key_id == api_key_id, idempotency.c.key == key)
                .values(
                    state="done",
                    status_code=status_code,
                    response=response,
                    headers=json.dumps(headers),
                )
            )

    def idempotency_abandon(self, api_key_id: str, key: str) -> None:
        """Forget a claim whose request failed, so the client's retry runs again."""
        with self.engine.begin() as connection:
            connection.execute(
                idempotency.delete().where(
                    idempotency.c.api_key_id == api_key_id,
                    idempotency.c.key == key,
                    idempotency.c.state == "in_progress",
                )
            )

    # -- response cache ---------------------------------------------------------------

    def cache_get(self, etag: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(response_cache).where(response_cache.c.etag == etag)
            ).first()
        if row is None:
            return None
        if _aware(row.expires_at) <= now():
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

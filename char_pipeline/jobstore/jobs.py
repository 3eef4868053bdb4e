"""Jobs and batches: rows, the one status transition, and the callback outbox written with
each final status."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from char_pipeline.jobstate import OPEN, JobStatus, sources
from char_pipeline.jobstore.deliveries import queue_delivery
from char_pipeline.jobstore.schema import StoreBase, iso, jobs, now

JOB_STATUSES = tuple(str(status) for status in JobStatus)


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
    account_id: str | None = None
    batch_id: str | None = None

    @classmethod
    def from_spec(cls, spec: dict) -> Job:
        """The job a ``create_jobs`` spec (with its job_id) is about to become: enough to
        build its run before the row exists (services/renders.py)."""
        row = new_job_row(spec, now())
        return cls(
            **{name: row[name] for name in _ROW_FIELDS},
            request=spec["request"],
            result=None,
            error=None,
            run_id=None,
            created_at=iso(row["created_at"]),
            updated_at=iso(row["updated_at"]),
            seq=0,
        )


_ROW_FIELDS = (
    "id",
    "kind",
    "status",
    "progress",
    "message",
    "reference_image_id",
    "api_key_id",
    "callback_url",
    "gpu_type",
    "instance_count",
    "attempts",
    "account_id",
    "batch_id",
)


def new_job_row(spec: dict, moment: datetime) -> dict:
    """A new job's row: the one place its defaults live."""
    return {
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
        "account_id": spec.get("account_id"),
        "batch_id": spec.get("batch_id"),
        "created_at": moment,
        "updated_at": moment,
    }


@dataclass(frozen=True)
class JobFilter:
    """What GET /v1/jobs narrows a listing by (all optional)."""

    status: str | None = None
    kind: str | None = None
    batch_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class Jobs(StoreBase):
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
        account_id: str | None = None,
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
                    "account_id": account_id,
                }
            ]
        )
        return job

    def create_jobs(self, specs: list[dict]) -> list[Job]:
        """Create several jobs in one transaction: a sensor sees all of them or none."""
        moment = now()
        rows = [new_job_row(spec, moment) for spec in specs]
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
            account_id=m["account_id"],
            batch_id=m["batch_id"],
        )

    def get_job(self, job_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else self._job(row)

    def list_jobs(
        self,
        account_id: str,
        where: JobFilter = JobFilter(),
        before_seq: int | None = None,
        limit: int = 20,
    ) -> list[Job]:
        """An account's jobs, newest first; ``before_seq`` continues a listing (the cursor)."""
        query = sa.select(jobs).where(jobs.c.account_id == account_id)
        if before_seq is not None:
            query = query.where(jobs.c.seq < before_seq)
        if where.status:
            query = query.where(jobs.c.status == where.status)
        if where.kind:
            query = query.where(jobs.c.kind == where.kind)
        if where.batch_id:
            query = query.where(jobs.c.batch_id == where.batch_id)
        if where.created_after:
            query = query.where(jobs.c.created_at > where.created_after)
        if where.created_before:
            query = query.where(jobs.c.created_at < where.created_before)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(jobs.c.seq.desc()).limit(limit)).all()
        return [self._job(row) for row in rows]

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

    def cancel_job(self, job_id: str, callback_payload: dict | None = None) -> bool:
        """Cancel an open job and queue its callback; False when it had already ended."""
        values = {"message": "Cancelled"}
        return self._finish(job_id, JobStatus.CANCELLED, values, callback_payload)

    def jobs_of_run(self, run_id: str) -> list[Job]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(jobs).where(jobs.c.run_id == run_id)).all()
        return [self._job(row) for row in rows]

    def recently_cancelled(self, within_seconds: float, limit: int = 200) -> list[Job]:
        """Jobs cancelled lately: the cancel sensor stops any run of theirs still going."""
        cutoff = now() - timedelta(seconds=within_seconds)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(jobs)
                .where(
                    jobs.c.status == str(JobStatus.CANCELLED),
                    jobs.c.updated_at >= cutoff,
                )
                .order_by(jobs.c.seq)
                .limit(limit)
            ).all()
        return [self._job(row) for row in rows]

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
                queue_delivery(
                    connection, job_id, job.api_key_id, job.callback_url, callback_payload, moment
                )
        return True

    def has_pending(self, kinds: tuple[str, ...] = ("video", "nerf")) -> bool:
        """Whether any job of these kinds waits for a run (a burst the sensor will group)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(jobs.c.id)
                .where(jobs.c.kind.in_(kinds), jobs.c.status == str(JobStatus.PENDING))
                .limit(1)
            ).first()
        return row is not None

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

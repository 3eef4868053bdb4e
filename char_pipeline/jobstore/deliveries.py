"""Webhook deliveries: due callbacks claimed with a lease, attempts recorded, 410s disabled."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from char_pipeline.jobstore.schema import (
    StoreBase,
    deliveries,
    delivery_attempts,
    disabled_endpoints,
    iso,
    now,
)


def queue_delivery(
    connection: sa.Connection,
    owner_id: str,
    api_key_id: str | None,
    url: str,
    payload: dict,
    moment: datetime,
) -> None:
    """Put a callback in the outbox, inside the caller's transaction (the one that writes the
    final status of ``owner_id``: a job, or a prediction). An endpoint that answered 410 to
    this key is recorded as disabled instead of being called again."""
    disabled = connection.execute(
        sa.select(disabled_endpoints.c.url).where(
            disabled_endpoints.c.api_key_id == (api_key_id or ""),
            disabled_endpoints.c.url == url,
        )
    ).first()
    connection.execute(
        deliveries.insert().values(
            webhook_id="msg_" + secrets.token_hex(12),
            job_id=owner_id,
            api_key_id=api_key_id,
            url=url,
            payload=json.dumps(payload, separators=(",", ":")),
            status="disabled" if disabled else "pending",
            attempt_count=0,
            next_attempt_at=None if disabled else moment,
            created_at=moment,
            updated_at=moment,
        )
    )


class Deliveries(StoreBase):
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

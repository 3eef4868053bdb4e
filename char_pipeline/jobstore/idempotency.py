"""Idempotency records: one claim per (API key, Idempotency-Key), leased to a process."""

from __future__ import annotations

import functools
import json
import os
import secrets
import socket
from datetime import datetime, timedelta

import sqlalchemy as sa

from char_pipeline.jobstore.schema import StoreBase, _aware, idempotency, now


@functools.cache
def _owner_of(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"


def process_owner() -> str:
    """Who holds an in-progress idempotency claim: host, pid and a token for this process."""
    return _owner_of(os.getpid())


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


class IdempotencyRecords(StoreBase):
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

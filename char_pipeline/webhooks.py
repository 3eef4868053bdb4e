"""Callbacks: outbound-URL safety, Standard Webhooks signing, delivery with retries.

Deliveries come from the job store's outbox (written with the job's final status). The
sender claims due rows under a lease, signs each body with the API key's secret(s)
(``standardwebhooks``), and records every attempt: 2xx is delivered; 410 disables that
endpoint for the key; 429/503 wait for Retry-After; anything else retries on the schedule
(``CHAR_WEBHOOK_RETRY_SCHEDULE``) with ±20% jitter, then gives up as failed.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.jobstore import JobStore

DEFAULT_RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)  # ~15 h in all
REQUEST_TIMEOUT_SECONDS = 15.0
MAX_RETRY_AFTER_SECONDS = 24 * 3600
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class OutboundUrlError(InvalidInputError):
    """A URL the service refuses to call (scheme, credentials, or a private address)."""


def parse_allowlist(text: str | None) -> list[str]:
    return [item.strip().lower() for item in (text or "").split(",") if item.strip()]


def _allowed(host: str, addresses: list[str], allow: list[str]) -> bool:
    for entry in allow:
        if entry == host:
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if addresses and all(ipaddress.ip_address(a) in network for a in addresses):
            return True
    return False


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundUrlError(
            f"The host {host!r} does not resolve: {exc.strerror}.", host=host
        ) from exc
    return sorted({info[4][0] for info in infos})


def check_outbound_url(url: str, allow: list[str]) -> None:
    """Refuse URLs the service must not call; resolves the host (again at send time)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError as exc:
        raise OutboundUrlError(f"{url!r} is not a valid URL.", url=url) from exc
    if parts.scheme not in ("https", "http") or not host:
        raise OutboundUrlError(
            "URLs this service calls (callbacks, fetched media) must be absolute https:// URLs.",
            url=url,
        )
    if parts.username or parts.password:
        raise OutboundUrlError("URLs this service calls must not carry credentials.", url=url)
    addresses = resolve(host)
    allowed = _allowed(host, addresses, allow)
    if parts.scheme != "https" and not allowed:
        raise OutboundUrlError(
            "URLs this service calls must use https (plain http only for hosts in "
            "CHAR_OUTBOUND_ALLOW).",
            url=url,
        )
    if allowed:
        return
    if host in METADATA_HOSTS or not all(_public(a) for a in addresses):
        raise OutboundUrlError(
            f"Host {host!r} resolves to a private, loopback, link-local or metadata address "
            f"({', '.join(addresses)}); such hosts are refused unless CHAR_OUTBOUND_ALLOW permits them.",
            url=url,
            addresses=", ".join(addresses),
        )


def parse_schedule(text: str | None) -> tuple[float, ...]:
    if not text:
        return DEFAULT_RETRY_SCHEDULE
    schedule = tuple(float(part) for part in text.split(",") if part.strip())
    if not schedule or any(s < 0 for s in schedule):
        raise ValueError(
            "CHAR_WEBHOOK_RETRY_SCHEDULE must be comma-separated non-negative seconds."
        )
    return schedule


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(0.0, float(value)), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return min(max(0.0, (moment - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER_SECONDS)


def sign_headers(
    webhook_id: str, payload: str, secrets: list[str], moment: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers; one v1 signature per valid secret (rotation)."""
    moment = moment or datetime.now(UTC)
    signatures = " ".join(Webhook(secret).sign(webhook_id, moment, payload) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "char-pipeline-webhooks/1",
    }


class WebhookSender:
    def __init__(
        self,
        jobs: JobStore,
        *,
        allow: list[str],
        schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_workers: int = 16,
    ) -> None:
        self.jobs, self.allow, self.schedule, self.max_workers = jobs, allow, schedule, max_workers
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def deliver_due(self, limit: int = 64, log: Callable[[str], None] | None = None) -> list[dict]:
        """Send every due delivery (up to ``limit``) concurrently; returns the outcomes."""
        due = self.jobs.claim_due_deliveries(limit)
        if not due:
            return []
        with ThreadPoolExecutor(
            max_workers=min(self.max_workers, len(due)), thread_name_prefix="webhook"
        ) as pool:
            outcomes = list(pool.map(self.send, due))
        for outcome in outcomes:
            if log:
                log(
                    f"webhook {outcome['webhook_id']} for {outcome['job_id']} → {outcome['url']}: "
                    f"{outcome['status_code'] or outcome['error']} ({outcome['outcome']}, attempt {outcome['attempt']})"
                )
        return outcomes

    def send(self, delivery: dict) -> dict:
        attempt = int(delivery["attempt_count"]) + 1
        status_code, error, retry_after = None, None, None
        started = time.perf_counter()
        try:
            check_outbound_url(delivery["url"], self.allow)
            secrets = (
                self.jobs.webhook_secrets(delivery["api_key_id"]) if delivery["api_key_id"] else []
            )
            if not secrets:
                raise RuntimeError("the job's API key has no webhook secret")
            headers = sign_headers(delivery["webhook_id"], delivery["payload"], secrets)
            response = self.client.post(
                delivery["url"], content=delivery["payload"].encode(), headers=headers
            )
            status_code = response.status_code
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            response.close()
        except OutboundUrlError as exc:
            error = exc.message
        except (httpx.HTTPError, RuntimeError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.perf_counter() - started) * 1000)

        next_at = None
        if status_code is not None and 200 <= status_code < 300:
            outcome = "delivered"
        elif status_code == 410:
            outcome = "disabled"
            self.jobs.disable_endpoint(delivery["api_key_id"], delivery["url"])
        elif attempt > len(self.schedule):
            outcome = "failed"
        else:
            outcome = "retry"
            delay = self.schedule[attempt - 1] * random.uniform(0.8, 1.2)
            if status_code in (429, 503) and retry_after is not None:
                delay = max(delay, retry_after)
            next_at = datetime.now(UTC) + timedelta(seconds=delay)
        if status_code is not None and not 200 <= status_code < 300 and error is None:
            error = f"HTTP {status_code}"
        self.jobs.record_attempt(
            delivery["id"],
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            outcome=outcome,
            next_attempt_at=next_at,
        )
        return {
            "webhook_id": delivery["webhook_id"],
            "job_id": delivery["job_id"],
            "url": delivery["url"],
            "attempt": attempt,
            "status_code": status_code,
            "error": error,
            "outcome": outcome,
            "next_attempt_at": next_at.isoformat() if next_at else None,
        }

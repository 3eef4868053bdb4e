"""No job waits forever for a launch that cannot happen.

Jobs become runs through sensors, and sensors live in the code location that the daemon
loads. When that code cannot load (or the daemon is gone), nothing inside Dagster can notice
the waiting jobs — so the API process watches: once the blocker has lasted
``launch_timeout_seconds``, every job still pending for that long fails with the blocker's
error, and, since the webhook sensor cannot run either, its callback is delivered from here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from char_pipeline import health
from char_pipeline.jobstore import JobStore
from char_pipeline.settings import Settings
from char_pipeline.webhooks import WebhookSender, parse_allowlist, parse_schedule

log = logging.getLogger(__name__)


class LaunchWatchdog:
    def __init__(
        self,
        settings: Settings,
        jobs: JobStore,
        checks: Callable[[], list[health.Check]],
        interval: float = 5.0,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.checks = checks
        self.interval = interval
        self.blocked_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: float | None = None) -> list[str]:
        """One look: the ids of the jobs failed by it."""
        now = time.monotonic() if now is None else now
        blockers = health.launch_blockers(self.checks())
        if not blockers:
            self.blocked_since = None
            return []
        self.blocked_since = self.blocked_since if self.blocked_since is not None else now
        timeout = self.settings.launch_timeout_seconds
        if now - self.blocked_since < timeout:
            return []
        cause = "; ".join(check.detail for check in blockers)
        failed = []
        # Only jobs still pending: a running run does not need the launcher (and the status is
        # checked again in the update, so a run that starts meanwhile keeps its job).
        waiting = self.jobs.open_jobs(
            older_than_seconds=timeout, kinds=("video", "nerf"), statuses=("pending",)
        )
        for job in waiting:
            if self.jobs.fail_job(
                job.id,
                "InternalError",
                f"The job could not be launched within {timeout} s: {cause}",
                {"cause": cause, "launch_timeout_seconds": timeout},
                from_statuses=("pending",),
            ):
                failed.append(job.id)
                log.warning("%s failed: not launched within %s s: %s", job.id, timeout, cause)
        self._deliver_callbacks()
        return failed

    def _deliver_callbacks(self) -> None:
        sender = WebhookSender(
            self.jobs,
            allow=parse_allowlist(self.settings.outbound_allow),
            schedule=parse_schedule(self.settings.webhook_retry_schedule),
        )
        try:
            sender.deliver_due()
        finally:
            sender.close()

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.tick()
                except Exception:  # a bad tick must not end the watch
                    log.exception("launch watchdog tick failed")

        self._thread = threading.Thread(target=loop, name="launch-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

"""One job state model: the statuses, which are open, and which changes are allowed.

Every status change in the job store goes through ``JobStore._transition`` with a target from
here; batch status is aggregated from its tasks here; each door maps these words to its own
(the v1 API speaks them as they are).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"  # accepted; no run has picked it up yet
    PROCESSING = "processing"  # a run is rendering it
    COMPLETED = "completed"  # result stored (terminal)
    FAILED = "failed"  # error stored (terminal)
    CANCELLED = "cancelled"  # stopped by its owner (terminal)


OPEN = (JobStatus.PENDING, JobStatus.PROCESSING)
TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

# target → the statuses it may be entered from. Terminal states are never left; a retry sends
# an open job back to pending; progress keeps a processing job processing.
ENTERED_FROM: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.PENDING: OPEN,
    JobStatus.PROCESSING: OPEN,
    JobStatus.COMPLETED: OPEN,
    JobStatus.FAILED: OPEN,
    JobStatus.CANCELLED: OPEN,
}


def is_open(status: str) -> bool:
    return status in OPEN


def sources(target: JobStatus, narrowed_to: Iterable[str] | None = None) -> tuple[str, ...]:
    """The statuses a job may be in for ``target`` to be entered (optionally narrowed)."""
    allowed = ENTERED_FROM[target]
    if narrowed_to is not None:
        narrowed = set(narrowed_to)
        allowed = tuple(s for s in allowed if s in narrowed)
    return tuple(str(s) for s in allowed)


def aggregate(statuses: list[str]) -> JobStatus:
    """A batch's status from its tasks': failed if all failed, cancelled if all were
    cancelled, completed once all ended, processing while any runs or some ended, else pending."""
    for uniform in (JobStatus.FAILED, JobStatus.CANCELLED):
        if statuses and all(s == uniform for s in statuses):
            return uniform
    if all(s in TERMINAL for s in statuses):
        return JobStatus.COMPLETED
    if any(s == JobStatus.PROCESSING or s in TERMINAL for s in statuses):
        return JobStatus.PROCESSING
    return JobStatus.PENDING

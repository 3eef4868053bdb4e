"""Durable state behind the API, one module per aggregate over one engine: API keys
(``keys``), jobs and batches (``jobs``), webhook deliveries (``deliveries``), idempotency
records (``idempotency``), reference ownership (``owners``), the render cache (``cache``) and
the Sora-style door's characters (``characters``) and the InstantCharacter-style door's
predictions (``predictions``); the tables are in ``schema``.
``JobStore`` is all of them on one connection pool.
"""

from __future__ import annotations

import functools

from char_pipeline.jobstore.cache import RenderCache
from char_pipeline.jobstore.characters import Character, Characters, UsernameTaken
from char_pipeline.jobstore.deliveries import Deliveries
from char_pipeline.jobstore.idempotency import IdempotencyRecords, process_owner
from char_pipeline.jobstore.jobs import JOB_STATUSES, Job, Jobs
from char_pipeline.jobstore.keys import SCOPES, ApiKey, Keys, hash_key
from char_pipeline.jobstore.owners import ReferenceOwners
from char_pipeline.jobstore.predictions import Prediction, Predictions
from char_pipeline.jobstore.schema import api_keys, iso, now

__all__ = [
    "JOB_STATUSES",
    "SCOPES",
    "ApiKey",
    "Character",
    "Characters",
    "Job",
    "JobStore",
    "Prediction",
    "UsernameTaken",
    "api_keys",
    "hash_key",
    "iso",
    "now",
    "open_job_store",
    "process_owner",
]


class JobStore(
    Keys,
    Jobs,
    Deliveries,
    IdempotencyRecords,
    ReferenceOwners,
    RenderCache,
    Characters,
    Predictions,
):
    """Every aggregate of the store, sharing one engine (``schema.StoreBase``)."""


@functools.cache
def open_job_store(url: str) -> JobStore:
    """One JobStore (and connection pool) per URL per process."""
    return JobStore(url)

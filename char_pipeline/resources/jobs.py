"""The job store as a Dagster resource: runs report progress and results to API jobs."""

from __future__ import annotations

import dagster as dg

from char_pipeline.jobstore import JobStore, open_job_store

JOB_ID_TAG = "char/job_id"
GPU_TYPE_TAG = "char/gpu_type"


class JobStoreResource(dg.ConfigurableResource):
    url: str

    @property
    def store(self) -> JobStore:
        return open_job_store(self.url)


def job_id_of(context: dg.AssetExecutionContext) -> str | None:
    return context.run.tags.get(JOB_ID_TAG)

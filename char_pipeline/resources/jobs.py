"""The job store as a Dagster resource: runs report progress and results to API jobs."""

from __future__ import annotations

import dagster as dg

from char_pipeline.jobstore import JobStore, open_job_store
from char_pipeline.links import completion_payload
from char_pipeline.resources.storage import ArtifactStore
from char_pipeline.settings import get_settings

JOB_ID_TAG = "char/job_id"
GPU_TYPE_TAG = "char/gpu_type"


class JobStoreResource(dg.ConfigurableResource):
    url: str

    @property
    def store(self) -> JobStore:
        return open_job_store(self.url)

    def complete(
        self, job_id: str, result: dict, artifacts: ArtifactStore, url_ttl: int | None
    ) -> bool:
        """Complete a job and queue its callback, whose links are signed like the API's."""
        settings = get_settings()
        payload = completion_payload(
            job_id,
            result,
            store=artifacts,
            secret=settings.signing_key(),
            base_url=settings.base_url,
            url_ttl=url_ttl,
        )
        return self.store.complete_job(job_id, result, payload)


def job_id_of(context: dg.AssetExecutionContext) -> str | None:
    return context.run.tags.get(JOB_ID_TAG)
